// The lineage graph: ancestors to the left, the record in the middle, descendants to
// the right, drawn as SVG. Every record node is a link (keyboard focusable).

import {h, svg, short, humanTime} from './dom.js';

const NW = 210;
const NH = 60;
const GAP = 84;
const VGAP = 18;
const PAD = 16;

let graphs = 0;

function clip(text, n) {
  const s = String(text ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function describe(node, rootId) {
  if (node.kind === 'external') return `external parent ${node.id} (${node.reason})`;
  const where = node.id === rootId ? 'this record' : node.depth < 0 ? `ancestor, ${-node.depth} step${node.depth < -1 ? 's' : ''} up` : `descendant, ${node.depth} step${node.depth > 1 ? 's' : ''} down`;
  const model = [node.model, node.model_version].filter(Boolean).join(' ');
  return `${node.slug}: ${node.operation} by ${model}, status ${node.status}, ${humanTime(node.generated_at)} (${where})`;
}

export function layout(data) {
  const columns = new Map();
  for (const node of data.nodes) {
    if (!columns.has(node.depth)) columns.set(node.depth, []);
    columns.get(node.depth).push(node);
  }
  const depths = [...columns.keys()].sort((a, b) => a - b);
  const rows = Math.max(...[...columns.values()].map((c) => c.length));
  const height = PAD * 2 + rows * NH + (rows - 1) * VGAP;
  const width = PAD * 2 + depths.length * NW + (depths.length - 1) * GAP;
  const pos = new Map();
  depths.forEach((depth, col) => {
    const nodes = columns.get(depth);
    const used = nodes.length * NH + (nodes.length - 1) * VGAP;
    const top = (height - used) / 2;
    nodes.forEach((node, i) => {
      pos.set(node.id, {x: PAD + col * (NW + GAP), y: top + i * (NH + VGAP)});
    });
  });
  return {pos, width, height, depths};
}

export function lineageGraph(data) {
  const id = `lineage-${++graphs}`;
  const {pos, width, height} = layout(data);
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const ancestors = data.nodes.filter((n) => n.depth < 0);
  const descendants = data.nodes.filter((n) => n.depth > 0);
  const parts = [
    svg('title', {id: `${id}-t`}, 'Lineage graph'),
    svg('desc', {id: `${id}-d`},
      `${ancestors.length} ancestors and ${descendants.length} descendants of this record; arrows point from parent to child.`),
    svg('defs', {}, svg('marker', {id: `${id}-arrow`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      svg('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead'}))),
  ];
  const edges = svg('g', {class: 'edges', 'aria-hidden': 'true'});
  for (const e of data.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NW;
    const y1 = a.y + NH / 2;
    const x2 = b.x;
    const y2 = b.y + NH / 2;
    const mx = (x1 + x2) / 2;
    edges.append(svg('path', {class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}`, 'marker-end': `url(#${id}-arrow)`}));
  }
  parts.push(edges);
  for (const node of data.nodes) {
    const p = pos.get(node.id);
    const label = describe(node, data.root);
    if (node.kind === 'external') {
      parts.push(svg('g', {class: 'node external', transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'img', 'aria-label': label},
        svg('title', {}, label),
        svg('rect', {width: NW, height: NH, rx: 8}),
        svg('text', {x: 12, y: 22, class: 'n1'}, 'external input'),
        svg('text', {x: 12, y: 42, class: 'n2'}, clip(node.id, 25))));
      continue;
    }
    const cls = node.id === data.root ? 'root' : node.depth < 0 ? 'ancestor' : 'descendant';
    const model = [node.model, node.model_version].filter(Boolean).join(' ');
    const when = node.generated_at ? node.generated_at.slice(11, 19) : '';
    parts.push(svg('a', {
      class: `node record ${cls} status-${node.status}`,
      href: `#/record/${encodeURIComponent(node.id)}`,
      transform: `translate(${p.x},${p.y})`,
      'aria-label': label,
      'aria-current': node.id === data.root ? 'page' : null,
      dataset: {id: node.id},
    },
    svg('title', {}, label),
    svg('rect', {width: NW, height: NH, rx: 8}),
    svg('text', {x: 12, y: 19, class: 'n1'}, node.slug + (node.status !== 'ok' ? '  ✗' : '')),
    svg('text', {x: 12, y: 36, class: 'n2'}, clip(model, 30)),
    svg('text', {x: 12, y: 52, class: 'n3'}, clip(`${node.operation} · ${when}`, 32))));
  }
  const drawing = svg('svg', {
    class: 'lineage', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'group', 'aria-labelledby': `${id}-t ${id}-d`,
  }, ...parts);

  const linkTo = (n) => (n.kind === 'external'
    ? h('code', {}, n.id)
    : h('a', {href: `#/record/${encodeURIComponent(n.id)}`}, n.slug));
  const parentsOf = (nid) => data.edges.filter((e) => e.to === nid).map((e) => byId.get(e.from)).filter(Boolean);
  const listing = h('details', {class: 'alt'},
    h('summary', {}, 'Lineage as a list'),
    h('ul', {}, data.nodes.filter((n) => n.kind === 'record').map((n) => {
      const parents = parentsOf(n.id);
      return h('li', {}, linkTo(n), ` (${n.operation}, ${short(n.model, 40)})`,
        parents.length ? [' ← made from ', parents.map((p, i) => [i ? ', ' : '', linkTo(p)])] : ' ← no parents');
    })));
  const scan = data.children;
  const note = [
    `${ancestors.length} ${ancestors.length === 1 ? 'ancestor' : 'ancestors'}, `,
    `${descendants.length} ${descendants.length === 1 ? 'descendant' : 'descendants'} (up to ${data.depth} steps). `,
    scan.complete
      ? `Descendants: the whole log after this record was searched (${scan.scanned.toLocaleString('en')} records).`
      : `Descendants: only the ${scan.scanned.toLocaleString('en')} records after this one were searched; later children may exist.`,
    data.truncated ? ' The graph was cut at its size limit.' : '',
  ];
  return h('figure', {class: 'lineage-figure'},
    h('div', {class: 'scroll', tabindex: 0, 'aria-label': 'Lineage graph, scrollable'}, drawing),
    h('figcaption', {}, note.join('')),
    h('p', {class: 'legend', 'aria-hidden': 'true'},
      h('span', {class: 'key ancestor'}, 'ancestor'), h('span', {class: 'key root'}, 'this record'),
      h('span', {class: 'key descendant'}, 'descendant'), h('span', {class: 'key external'}, 'external input')),
    listing);
}
