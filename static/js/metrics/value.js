// The value page: revenue per customer and predicted CLV by cohort; predicted vs actual cumulative repeat purchases
// over the accuracy holdout. The tables on the page hold every number; this only draws them.
(function () {
  const data = JSON.parse(document.getElementById("value-data").textContent);
  if (typeof Chart === "undefined") return;
  const css = getComputedStyle(document.documentElement);
  const accent = css.getPropertyValue("--accent").trim() || "#3b5bdb";
  const ok = css.getPropertyValue("--ok").trim() || "#2b8a3e";

  const clv = document.getElementById("clv-chart");
  if (clv) {
    new Chart(clv, {
      data: {
        labels: data.clv.labels,
        datasets: [
          { type: "bar", label: clv.dataset.historical || "", data: data.clv.revenue_per_customer, backgroundColor: accent },
          { type: "line", label: clv.dataset.predicted || "", data: data.clv.predicted, borderColor: ok, backgroundColor: ok },
        ],
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  }

  const accuracy = document.getElementById("accuracy-chart");
  if (accuracy) {
    new Chart(accuracy, {
      type: "line",
      data: {
        labels: data.accuracy.labels,
        datasets: [
          { label: accuracy.dataset.predicted || "", data: data.accuracy.predicted, borderColor: accent, borderDash: [6, 4], pointRadius: 0 },
          { label: accuracy.dataset.actual || "", data: data.accuracy.actual, borderColor: ok, pointRadius: 0 },
        ],
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  }
})();
