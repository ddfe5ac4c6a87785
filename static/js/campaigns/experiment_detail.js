// Experiment detail: each variant's uplift vs the control in points, its confidence interval as a floating bar
// and the estimate as a point; a line at 0 (no effect). The table below has every number.
(function () {
  const source = document.getElementById("experiment-data");
  const canvas = document.getElementById("experiment-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const style = getComputedStyle(document.documentElement);
  const accent = style.getPropertyValue("--accent").trim() || "#3b5bdb";
  const ok = style.getPropertyValue("--ok").trim() || "#2b8a3e";
  const bad = style.getPropertyValue("--bad").trim() || "#c92a2a";
  const fg = style.getPropertyValue("--fg").trim() || "#1d2330";
  // Green when the whole interval is above 0, red when below, blue when it spans 0 (the data cannot tell).
  const colour = ([low, high]) => (low > 0 ? ok : high < 0 ? bad : accent);
  const points = (value) => (value > 0 ? "+" : "") + value.toFixed(2);
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        {
          label: data.interval_label,
          data: data.interval,
          backgroundColor: data.interval.map((range) => colour(range) + "55"),
          borderColor: data.interval.map(colour),
          borderWidth: 1,
          barPercentage: 0.4,
        },
        {
          type: "line",
          label: data.estimate_label,
          data: data.estimate,
          showLine: false,
          pointRadius: 6,
          pointStyle: "rectRot",
          backgroundColor: fg,
          borderColor: fg,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) =>
              Array.isArray(item.raw)
                ? `${points(item.raw[0])} … ${points(item.raw[1])}`
                : points(item.raw),
          },
        },
      },
      scales: {
        y: {
          title: { display: true, text: data.axis_label },
          grid: { color: (context) => (context.tick && context.tick.value === 0 ? fg : "rgba(0,0,0,0.08)") },
        },
      },
    },
  });
})();
