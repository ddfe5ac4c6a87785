// The history import's progress, polled while it is queued or running, so the page moves without a reload.
(function () {
  const box = document.getElementById("import");
  if (!box) return;
  const url = box.dataset.progressUrl;
  const text = (id, value) => { document.getElementById(id).textContent = value; };

  function show(progress) {
    text("import-state", progress.import_state_display);
    text("customers-imported", progress.customers_imported);
    text("orders-imported", progress.orders_imported);
    text("items-skipped", progress.items_skipped);
    const status = document.getElementById("source-status");
    status.textContent = progress.status_display;
    status.className = "status " + progress.status;
    const message = document.getElementById("status-message");
    message.textContent = progress.status_message;
    message.hidden = !progress.status_message;
    const bar = document.getElementById("import-progress");
    if (progress.percent === null) bar.removeAttribute("value"); else bar.value = progress.percent;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const progress = await response.json();
      show(progress);
      if (progress.import_state === "queued" || progress.import_state === "running") setTimeout(poll, 2000);
    } catch (error) {
      setTimeout(poll, 10000);
    }
  }
  poll();
})();
