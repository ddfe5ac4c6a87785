// The funnel page: customers who reached each step, flagged steps in red. The table below has every number.
(function () {
  const data = JSON.parse(document.getElementById("funnel-data").textContent);
  const canvas = document.getElementById("funnel-chart");
  if (!canvas || typeof Chart === "undefined") return;
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#3b5bdb";
  const bad = getComputedStyle(document.documentElement).getPropertyValue("--bad").trim() || "#c92a2a";
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [{ data: data.reached, backgroundColor: data.flagged.map((f) => (f ? bad : accent)) }],
    },
    options: {
      indexAxis: "y",
      animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true } },
    },
  });
})();
