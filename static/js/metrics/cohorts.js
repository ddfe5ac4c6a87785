// The cohorts page: retention curves by acquisition channel, the activity lifecycle (dormant below zero) and the
// RFM segments. The tables on the page hold every number; this only draws them.
(function () {
  // The heat map's shades come as data attributes (the Content-Security-Policy allows no style attributes):
  // blue at the cell's opacity, and white links on the darkest cells.
  document.querySelectorAll("td.heat[data-alpha]").forEach((cell) => {
    cell.style.backgroundColor = `rgb(59 91 219 / ${cell.dataset.alpha}%)`;
    if (cell.dataset.dark !== undefined) cell.querySelectorAll("a").forEach((link) => (link.style.color = "#fff"));
  });
  const data = JSON.parse(document.getElementById("cohorts-data").textContent);
  if (typeof Chart === "undefined") return;
  const css = getComputedStyle(document.documentElement);
  const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const accent = colour("--accent", "#3b5bdb");
  const ok = colour("--ok", "#2b8a3e");
  const bad = colour("--bad", "#c92a2a");
  const palette = [accent, "#f08c00", ok, "#ae3ec9", "#1098ad", "#e8590c", "#5c940d", "#d6336c", "#495057"];
  const share = data.retention.measure === "share";

  const retention = document.getElementById("retention-chart");
  if (retention) {
    new Chart(retention, {
      type: "line",
      data: {
        labels: data.retention.labels,
        datasets: data.retention.series.map((series, i) => ({
          label: series.label,
          data: series.values.map((value) => (value === null ? null : share ? value * 100 : value)),
          borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length],
          borderWidth: i === 0 ? 3 : 1.5,
          spanGaps: false,
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: retention.dataset.xLabel || "" } },
          y: { beginAtZero: true, ticks: { callback: (value) => (share ? value + " %" : value) } },
        },
      },
    });
  }

  const activity = document.getElementById("activity-chart");
  if (activity) {
    const bars = [
      ["new", accent],
      ["returning", ok],
      ["resurrecting", "#f08c00"],
      ["dormant", bad],
    ];
    new Chart(activity, {
      type: "bar",
      data: {
        labels: data.activity.labels,
        datasets: bars.map(([key, background]) => ({
          label: activity.dataset[key] || key,
          data: data.activity[key],
          backgroundColor: background,
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true } },
      },
    });
  }

  const segments = document.getElementById("segments-chart");
  if (segments) {
    new Chart(segments, {
      type: "bar",
      data: {
        labels: data.segments.labels,
        datasets: [{ data: data.segments.customers, backgroundColor: accent }],
      },
      options: {
        indexAxis: "y",
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true } },
      },
    });
  }
})();
