'use strict';
// Live line charts over the last few minutes, drawn with the vendored uPlot: a chart
// keeps its own samples and redraws when a page's refresh pushes new ones.

const Charts = {
  /** Samples kept per chart: ten minutes at the default 5 s refresh. */
  keep: 120,
  /** The time shown, in seconds: the last ten minutes. */
  window: 600,

  /**
   * A chart in `el` with one line per series ({label, color}); returns
   * {push(values), destroy()}, values in series order (null for a gap).
   */
  create(el, series, opts = {}) {
    const data = [[], ...series.map(() => [])];
    const width = Math.max(320, Math.min(760, (el.clientWidth || 700) - 10));
    const plot = new uPlot({
      width,
      height: opts.height || 180,
      scales: {
        x: { time: true, range: (u, min, max) => [(max || Date.now() / 1000) - Charts.window, max || Date.now() / 1000] },
        y: { range: (u, min, max) => [0, Math.max((max || 0) * 1.1, 1)] },
      },
      axes: [{ values: (u, ticks) => ticks.map(t => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })) }, { values: (u, ticks) => ticks.map(v => (opts.unit ? `${v}${opts.unit}` : fmtNum(v))), size: 60 }],
      series: [{}, ...series.map(s => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false }))],
      legend: { live: true },
    }, data, el);
    return {
      push(values) {
        data[0].push(Date.now() / 1000);
        values.forEach((v, i) => data[i + 1].push(v === undefined ? null : v));
        if (data[0].length > Charts.keep) data.forEach(d => d.shift());
        plot.setData(data);
      },
      destroy() { plot.destroy(); },
    };
  },
};
