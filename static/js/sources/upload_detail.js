// An upload's check or import runs on the server: its progress bar is polled and moves without a reload; once the
// work is done the page reloads to show the preview or the result.
(function () {
  const box = document.getElementById("upload-progress");
  if (!box) return;
  const url = box.dataset.progressUrl;

  function show(progress) {
    document.getElementById("progress-state").textContent = progress.state_display;
    document.getElementById("progress-percent").textContent = progress.percent;
    document.getElementById("progress-bar").value = progress.percent;
    const state = document.getElementById("upload-state");
    state.textContent = progress.state_display;
    state.className = "status " + progress.state;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const progress = await response.json();
      show(progress);
      if (progress.working) setTimeout(poll, 1000);
      else window.location.reload();
    } catch (error) {
      setTimeout(poll, 5000);
    }
  }
  setTimeout(poll, 500);
})();
