// The overview: the stage KPIs' colours and the stage trend (customers per stage at the end of each day, stacked; the
// table below has the numbers).
(function () {
  // A stage KPI's card is topped by the stage's colour, given as a data attribute (the Content-Security-Policy
  // allows no style attributes).
  document.querySelectorAll(".kpi[data-colour]").forEach((card) => {
    card.style.borderTop = `4px solid ${card.dataset.colour}`;
  });
  const source = document.getElementById("trend-data");
  const canvas = document.getElementById("trend-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  // Stage colours are #rrggbb: the area gets the colour with some transparency, the line the colour itself.
  const translucent = (colour) => (/^#[0-9a-f]{6}$/i.test(colour) ? colour + "99" : colour);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: data.datasets.map((dataset, index) => ({
        label: dataset.label,
        data: dataset.data,
        borderColor: dataset.colour,
        backgroundColor: translucent(dataset.colour),
        fill: index === 0 ? "origin" : "-1",
        pointRadius: 0,
        borderWidth: 1,
        tension: 0,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom" } },
      scales: {
        x: { ticks: { maxTicksLimit: 12, autoSkip: true } },
        y: { stacked: true, beginAtZero: true },
      },
    },
  });
})();
