// The flows page: stage changes from × to as a Sankey (sources on the left, targets on the right, so that moves
// back and forth never make a cycle) or as a heat matrix. The table below has every number.
(function () {
  const canvas = document.getElementById("flows-chart");
  if (!canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(document.getElementById("flows-data").textContent);
  // Nothing moved in the period: the table says so, and the Sankey plugin throws on an empty dataset.
  if (!data.cells.length) return;
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#3b5bdb";
  const muted = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() || "#667085";
  const names = {};
  const colours = {};
  data.stages.forEach((stage) => {
    names[stage.key] = stage.name;
    colours[stage.key] = stage.colour || accent;
  });
  const fromName = (key) => (key === null ? data.new_label : names[key]);

  if (data.kind === "matrix") {
    const rows = [data.new_label, ...data.stages.map((stage) => stage.name)];
    const columns = data.stages.map((stage) => stage.name);
    const max = Math.max(1, ...data.cells.map((cell) => cell.count));
    new Chart(canvas, {
      type: "matrix",
      data: {
        datasets: [
          {
            data: data.cells.map((cell) => ({ x: names[cell.to], y: fromName(cell.from), v: cell.count })),
            backgroundColor: (ctx) => {
              const value = ctx.raw ? ctx.raw.v : 0;
              return `rgba(59, 91, 219, ${0.1 + (0.9 * value) / max})`;
            },
            width: ({ chart }) => (chart.chartArea || {}).width / columns.length - 2,
            height: ({ chart }) => (chart.chartArea || {}).height / rows.length - 2,
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
              title: () => "",
              label: (ctx) => `${ctx.raw.y} → ${ctx.raw.x}: ${ctx.raw.v}`,
            },
          },
        },
        scales: {
          x: { type: "category", labels: columns, offset: true, grid: { display: false }, position: "top" },
          y: { type: "category", labels: rows, offset: true, grid: { display: false } },
        },
      },
    });
    return;
  }

  // Sankey: node "f:<key>" is the stage left, "t:<key>" the stage entered.
  const labels = {};
  const column = {};
  const nodeColour = {};
  data.cells.forEach((cell) => {
    const from = `f:${cell.from === null ? "" : cell.from}`;
    const to = `t:${cell.to}`;
    labels[from] = fromName(cell.from);
    labels[to] = names[cell.to];
    column[from] = 0;
    column[to] = 1;
    nodeColour[from] = cell.from === null ? muted : colours[cell.from];
    nodeColour[to] = colours[cell.to];
  });
  new Chart(canvas, {
    type: "sankey",
    data: {
      datasets: [
        {
          data: data.cells.map((cell) => ({
            from: `f:${cell.from === null ? "" : cell.from}`,
            to: `t:${cell.to}`,
            flow: cell.count,
          })),
          labels: labels,
          column: column,
          colorFrom: (ctx) => nodeColour[ctx.dataset.data[ctx.dataIndex].from],
          colorTo: (ctx) => nodeColour[ctx.dataset.data[ctx.dataIndex].to],
          colorMode: "gradient",
        },
      ],
    },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
  });
})();
