// Campaign detail: spend against revenue under each attribution. The tables below have every number.
(function () {
  const source = document.getElementById("campaign-data");
  const canvas = document.getElementById("campaign-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const style = getComputedStyle(document.documentElement);
  const accent = style.getPropertyValue("--accent").trim() || "#3b5bdb";
  const muted = style.getPropertyValue("--muted").trim() || "#667085";
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      // The first bar is the spend; the others are revenue.
      datasets: [{ data: data.values, backgroundColor: data.values.map((_, i) => (i === 0 ? muted : accent)) }],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true } },
    },
  });
})();
