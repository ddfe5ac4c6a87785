// The journey page: the listed events per month, stacked by kind. The timeline table holds every event.
(function () {
  const data = JSON.parse(document.getElementById("journey-data").textContent);
  const canvas = document.getElementById("journey-chart");
  if (!canvas || typeof Chart === "undefined") return;
  const css = getComputedStyle(document.documentElement);
  const kinds = [
    ["order", css.getPropertyValue("--ok").trim() || "#2b8a3e"],
    ["touchpoint", css.getPropertyValue("--accent").trim() || "#3b5bdb"],
    ["feedback", "#f08c00"],
    ["transition", "#ae3ec9"],
  ];
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: kinds.map(([kind, colour]) => ({ label: canvas.dataset[kind] || kind, data: data[kind], backgroundColor: colour })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
})();
