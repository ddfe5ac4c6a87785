// The stage page: customers in the stage per day (line) and completed stays by days (bars). The tables below have
// every number.
(function () {
  if (typeof Chart === "undefined") return;
  const data = JSON.parse(document.getElementById("stage-data").textContent);
  const colour = data.colour || getComputedStyle(document.documentElement).getPropertyValue("--accent").trim();
  const trend = document.getElementById("stage-trend-chart");
  if (trend) {
    new Chart(trend, {
      type: "line",
      data: {
        labels: data.trend.labels,
        datasets: [{ data: data.trend.counts, borderColor: colour, backgroundColor: colour, pointRadius: 0, stepped: true }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
  const histogram = document.getElementById("stage-time-chart");
  if (histogram) {
    new Chart(histogram, {
      type: "bar",
      data: { labels: data.histogram.labels, datasets: [{ data: data.histogram.counts, backgroundColor: colour }] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
})();
