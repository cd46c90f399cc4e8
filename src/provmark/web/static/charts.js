// Charts drawn as SVG: a bar chart over time, a step chart of the log's size, and
// inline bars for totals. Each comes with a text equivalent for screen readers.

import {h, svg, number, shortTime, shortDate, parseTime} from './dom.js';

function niceStep(max, ticks = 4) {
  if (max <= 0) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

function fmtTick(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v % 1000 ? 1 : 0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

let chartIds = 0;

// Drawn at the width it is shown at (within limits), so that 12px text stays 12px on a
// narrow screen instead of being scaled down with a wide viewBox.
function chartWidth(width) {
  return Math.round(Math.min(960, Math.max(300, width || 960)));
}

/**
 * Bars over time. series: [{start, count, errors, per_minute}]; value: per_minute.
 */
export function rateChart(series, {title, description, bucketSeconds, width}) {
  const W = chartWidth(width);
  const H = 260;
  const m = {top: 16, right: 16, bottom: 40, left: 56};
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const minutes = bucketSeconds / 60;
  const peak = Math.max(0, ...series.map((s) => s.per_minute));
  const step = niceStep(peak || 1);
  const top = Math.max(step, Math.ceil((peak || 1) / step) * step);
  const y = (v) => m.top + ih - (v / top) * ih;
  const bw = iw / Math.max(1, series.length);
  const id = `chart-${++chartIds}`;
  const parts = [
    svg('title', {id: `${id}-t`}, title),
    svg('desc', {id: `${id}-d`}, description),
  ];
  for (let v = 0; v <= top + 1e-9; v += step) {
    parts.push(svg('line', {class: 'grid', x1: m.left, x2: W - m.right, y1: y(v), y2: y(v)}));
    parts.push(svg('text', {class: 'tick', x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end'}, fmtTick(v)));
  }
  const spansDays = series.length * bucketSeconds > 86400;
  const labels = Math.max(2, Math.min(8, Math.floor(iw / (spansDays ? 110 : 64))));
  const every = Math.max(1, Math.ceil(series.length / labels));
  series.forEach((s, i) => {
    const x = m.left + i * bw;
    const start = parseTime(s.start);
    const errRate = s.errors / minutes;
    const okRate = s.per_minute - errRate;
    const label = `${spansDays ? `${shortDate(start)} ` : ''}${shortTime(start)} UTC: ` +
      `${number(s.count)} records${s.errors ? `, ${s.errors} failed` : ''} (${s.per_minute} per minute)`;
    const g = svg('g', {class: 'bar'}, svg('title', {}, label));
    if (okRate > 0) {
      g.append(svg('rect', {class: 'ok', x: x + bw * 0.1, width: bw * 0.8, y: y(s.per_minute), height: y(errRate) - y(s.per_minute)}));
    }
    if (errRate > 0) {
      g.append(svg('rect', {class: 'err', x: x + bw * 0.1, width: bw * 0.8, y: y(errRate), height: y(0) - y(errRate)}));
    }
    g.append(svg('rect', {class: 'hit', x, width: bw, y: m.top, height: ih}));
    parts.push(g);
    if (i % every === 0) {
      const text = spansDays ? `${shortDate(start)} ${shortTime(start)}` : shortTime(start);
      parts.push(svg('text', {class: 'tick', x: x + bw / 2, y: H - m.bottom + 18, 'text-anchor': 'middle'}, text));
    }
  });
  parts.push(svg('line', {class: 'axis', x1: m.left, x2: W - m.right, y1: y(0), y2: y(0)}));
  parts.push(svg('text', {class: 'axis-label', x: 14, y: m.top + ih / 2, transform: `rotate(-90 14 ${m.top + ih / 2})`, 'text-anchor': 'middle'}, 'records / min'));
  parts.push(svg('text', {class: 'axis-label', x: m.left + iw / 2, y: H - 4, 'text-anchor': 'middle'}, 'time (UTC)'));
  return svg('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d`}, ...parts);
}

/** Tree size over time, one point per signed checkpoint (oldest first). */
export function sizeChart(points, {title, description, width}) {
  const W = chartWidth(width);
  const H = 240;
  const m = {top: 16, right: 44, bottom: 40, left: 64};
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const times = points.map((p) => parseTime(p.created_at).getTime());
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  const pad = Math.max(5000 - (t1 - t0) / 2, (t1 - t0) * 0.04);  // at least 10 s shown
  t0 -= pad;
  t1 += pad;
  const maxSize = Math.max(1, ...points.map((p) => p.size));
  const step = niceStep(maxSize);
  const top = Math.ceil(maxSize / step) * step;
  const x = (t) => m.left + ((t - t0) / (t1 - t0)) * iw;
  const y = (v) => m.top + ih - (v / top) * ih;
  const id = `chart-${++chartIds}`;
  const parts = [svg('title', {id: `${id}-t`}, title), svg('desc', {id: `${id}-d`}, description)];
  for (let v = 0; v <= top; v += step) {
    parts.push(svg('line', {class: 'grid', x1: m.left, x2: W - m.right, y1: y(v), y2: y(v)}));
    parts.push(svg('text', {class: 'tick', x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end'}, fmtTick(v)));
  }
  const seconds = t1 - t0 < 600000;
  const ticks = Math.max(2, Math.min(6, Math.floor(iw / 110)));
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const d = new Date(t);
    const label = seconds
      ? `${shortTime(d)}:${String(d.getUTCSeconds()).padStart(2, '0')}`
      : (t1 - t0 > 86400000 ? `${shortDate(d)} ${shortTime(d)}` : shortTime(d));
    parts.push(svg('text', {class: 'tick', x: x(t), y: H - m.bottom + 18, 'text-anchor': 'middle'}, label));
  }
  let d = '';
  points.forEach((p, i) => {
    const px = x(times[i]);
    const py = y(p.size);
    d += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
  });
  parts.push(svg('path', {class: 'line', d}));
  points.forEach((p, i) => {
    parts.push(svg('circle', {class: 'point', cx: x(times[i]), cy: y(p.size), r: 4},
      svg('title', {}, `size ${number(p.size)} at ${p.created_at}`)));
  });
  parts.push(svg('line', {class: 'axis', x1: m.left, x2: W - m.right, y1: y(0), y2: y(0)}));
  parts.push(svg('text', {class: 'axis-label', x: 14, y: m.top + ih / 2, transform: `rotate(-90 14 ${m.top + ih / 2})`, 'text-anchor': 'middle'}, 'records in log'));
  parts.push(svg('text', {class: 'axis-label', x: m.left + iw / 2, y: H - 4, 'text-anchor': 'middle'}, 'checkpoint time (UTC)'));
  return svg('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d`}, ...parts);
}

/** A table of totals with a proportional bar in each row. */
export function totalsTable(items, {caption, name, link}) {
  const max = Math.max(1, ...items.map((i) => i.count));
  const total = items.reduce((n, i) => n + i.count, 0);
  return h('table', {class: 'totals'},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, name), h('th', {scope: 'col', class: 'num'}, 'Records'),
      h('th', {scope: 'col'}, h('span', {class: 'offscreen'}, 'Share')))),
    h('tbody', {}, items.length ? items.map((item) => h('tr', {},
      h('th', {scope: 'row'}, link ? h('a', {href: link(item)}, item.label) : item.label),
      h('td', {class: 'num'}, number(item.count)),
      h('td', {class: 'bar-cell'},
        svg('svg', {viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true', class: 'share'},
          svg('rect', {x: 0, y: 0, height: 10, width: (item.count / max) * 100})),
        h('span', {class: 'offscreen'}, `${Math.round((item.count / total) * 100)} percent`)))) :
      h('tr', {}, h('td', {colspan: 3, class: 'muted'}, 'No records in this window.'))));
}
