// The header's model selector: choosing a model opens the same page for it (each option's value is that URL).
// A file rather than an onchange attribute: the Content-Security-Policy runs no inline script.
(function () {
  const select = document.querySelector("form.model-select select");
  if (select) select.addEventListener("change", () => (window.location = select.value));
})();
