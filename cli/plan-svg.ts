/**
 * The picture of a mesh plan (SVG): datacenters with their servers and gateways, federation links to the
 * primary, the agent TLS chain (root, per-datacenter intermediates) and the service mesh CA, with what is
 * added, changed or removed marked. Deterministic: the same plan gives the same bytes.
 */
import type { DatacenterDescription } from '../constructs/datacenter';
import type { MeshChange } from '../constructs/private/mesh-diff';
import type { MeshManifest } from '../constructs/private/mesh-manifest';

type Mark = 'added' | 'changed' | 'removed' | 'unchanged';

const COLOURS: { readonly [M in Mark]: string } = {
  added: '#1a7f37',
  changed: '#9a6700',
  removed: '#cf222e',
  unchanged: '#57606a',
};

const BOX = { width: 300, height: 118 };
const GAP = 40;
const MARGIN = 30;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(
  x: number,
  y: number,
  content: string,
  options: { size?: number; weight?: string; anchor?: string; fill?: string } = {},
): string {
  return `<text x="${x}" y="${y}" font-family="Helvetica, Arial, sans-serif" font-size="${options.size ?? 12}"${options.weight ? ` font-weight="${options.weight}"` : ''} text-anchor="${options.anchor ?? 'start'}" fill="${options.fill ?? '#24292f'}">${escape(content)}</text>`;
}

function rect(x: number, y: number, width: number, height: number, mark: Mark): string {
  const dash = mark === 'removed' ? ' stroke-dasharray="6 4"' : '';
  const fill =
    mark === 'added' ? '#dafbe1' : mark === 'changed' ? '#fff8c5' : mark === 'removed' ? '#ffebe9' : '#f6f8fa';
  return `<rect x="${x}" y="${y}" width="${width}" height="${height}" rx="8" fill="${fill}" stroke="${COLOURS[mark]}" stroke-width="2"${dash}/>`;
}

function line(x1: number, y1: number, x2: number, y2: number, mark: Mark): string {
  const dash = mark === 'removed' ? ' stroke-dasharray="6 4"' : '';
  return `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${COLOURS[mark]}" stroke-width="2"${dash} marker-end="url(#arrow-${mark})"/>`;
}

function markOf(changes: readonly MeshChange[], predicate: (c: MeshChange) => boolean): Mark {
  const relevant = changes.filter(predicate);
  if (relevant.some((c) => c.action === 'delete')) return 'removed';
  if (relevant.some((c) => c.action === 'create')) return 'added';
  return relevant.length > 0 ? 'changed' : 'unchanged';
}

/** Renders the plan of one mesh: `after` as synthesized, `before` as applied (or undefined). */
export function renderPlanSvg(
  after: MeshManifest,
  before: MeshManifest | undefined,
  changes: readonly MeshChange[],
): string {
  const removed = (before?.datacenters ?? []).filter((d) => !after.datacenters.some((a) => a.name === d.name));
  const primary = after.datacenters.find((d) => d.name === after.primary)!;
  const secondaries: DatacenterDescription[] = [
    ...after.datacenters.filter((d) => d.name !== after.primary),
    ...removed,
  ];
  const columns = Math.max(1, secondaries.length);
  const width = MARGIN * 2 + columns * BOX.width + (columns - 1) * GAP;
  const out: string[] = [];
  const top = 84;
  const rowGap = 90;
  const position = new Map<string, { x: number; y: number }>();
  position.set(primary.name, { x: (width - BOX.width) / 2, y: top });
  secondaries.forEach((dc, i) =>
    position.set(dc.name, { x: MARGIN + i * (BOX.width + GAP), y: top + BOX.height + rowGap }),
  );

  const dcMark = (dc: DatacenterDescription): Mark =>
    removed.includes(dc) ? 'removed' : markOf(changes, (c) => c.datacenter === dc.name && c.kind !== 'federation');

  // federation links first, under the boxes
  const links = [
    ...after.federation,
    ...(before?.federation ?? []).filter((l) => !after.federation.some((a) => a.from === l.from && a.to === l.to)),
  ];
  for (const link of links) {
    const from = position.get(link.from);
    const to = position.get(link.to);
    if (!from || !to) continue;
    const mark = markOf(changes, (c) => c.kind === 'federation' && c.subject === `link ${link.from} → ${link.to}`);
    const x1 = from.x + BOX.width / 2;
    const x2 = to.x + BOX.width / 2;
    out.push(line(x1, from.y, x2, to.y + BOX.height + 6, mark));
    out.push(
      text((x1 + x2) / 2 + 6, (from.y + to.y + BOX.height) / 2, 'WAN via mesh gateways', {
        size: 10,
        fill: COLOURS[mark],
      }),
    );
  }

  for (const dc of [primary, ...secondaries]) {
    const { x, y } = position.get(dc.name)!;
    const mark = dcMark(dc);
    const gatewayMark = markOf(changes, (c) => c.kind === 'gateway' && c.datacenter === dc.name);
    const serverMark = markOf(changes, (c) => c.kind === 'servers' && c.datacenter === dc.name);
    const services = after.services.filter((s) => s.datacenters.includes(dc.name)).map((s) => s.name);
    out.push(`<g id="dc-${escape(dc.name)}" data-change="${mark}">`);
    out.push(rect(x, y, BOX.width, BOX.height, mark));
    out.push(
      text(x + 12, y + 22, `${dc.name}${dc.name === after.primary ? '  (primary)' : ''}`, { size: 14, weight: 'bold' }),
    );
    out.push(text(x + 12, y + 42, `${dc.platform} on ${dc.cloud}`));
    out.push(
      text(x + 12, y + 60, `${dc.servers} Consul server${dc.servers === 1 ? '' : 's'}`, {
        fill: COLOURS[serverMark === 'unchanged' ? 'unchanged' : serverMark],
      }),
    );
    out.push(
      text(
        x + 12,
        y + 78,
        `gateway ${dc.meshGateway.address ? `${dc.meshGateway.address}:${dc.meshGateway.port}` : `(${dc.meshGateway.exposure})`}`,
        {
          size: 11,
          fill: COLOURS[gatewayMark],
        },
      ),
    );
    out.push(
      text(x + 12, y + 96, services.length ? `services: ${services.join(', ')}` : 'no services yet', {
        size: 11,
        fill: '#57606a',
      }),
    );
    out.push(
      text(x + BOX.width - 10, y + 22, mark === 'unchanged' ? '' : mark, {
        size: 10,
        anchor: 'end',
        fill: COLOURS[mark],
      }),
    );
    out.push('</g>');
  }

  // the agent TLS chain and the service mesh CA
  const caTop = top + 2 * BOX.height + 2 * rowGap - 20;
  const rootMark = markOf(
    changes,
    (c) => c.kind === 'ca' && (c.subject === 'agent TLS root' || c.subject === 'certificate settings'),
  );
  const plan = after.ca.plan;
  const rootLabel = `root ${plan.root}${plan.previousRoot ? ` + ${plan.previousRoot}${plan.crossSign ? ' (cross-signed)' : ' (NOT cross-signed)'}` : ''}`;
  const rootWidth = 300;
  const rootX = (width - rootWidth) / 2;
  out.push('<g id="ca">');
  out.push(
    text(MARGIN, caTop - 14, 'Agent TLS (offline root, one intermediate per datacenter)', { size: 12, weight: 'bold' }),
  );
  out.push(rect(rootX, caTop, rootWidth, 34, rootMark));
  out.push(text(rootX + rootWidth / 2, caTop + 22, rootLabel, { anchor: 'middle', weight: 'bold' }));
  const intermediates = after.datacenters;
  const iw = Math.min(
    BOX.width,
    (width - 2 * MARGIN - (intermediates.length - 1) * 12) / Math.max(1, intermediates.length),
  );
  intermediates.forEach((dc, i) => {
    const ix = MARGIN + i * (iw + 12);
    const iy = caTop + 80;
    const mark = markOf(
      changes,
      (c) =>
        (c.kind === 'datacenter' && c.datacenter === dc.name && c.action === 'create') ||
        c.subject === `server certificate of ${dc.name}`,
    );
    out.push(line(rootX + rootWidth / 2, caTop + 34, ix + iw / 2, iy - 4, rootMark === 'unchanged' ? mark : rootMark));
    out.push(rect(ix, iy, iw, 30, mark === 'unchanged' ? rootMark : mark));
    out.push(text(ix + iw / 2, iy + 19, `intermediate ${dc.name}`, { anchor: 'middle', size: 11 }));
  });
  const meshCaMark = markOf(changes, (c) => c.kind === 'ca' && c.subject === 'service mesh CA');
  const meshCa = after.ca.meshCa;
  const root = Object.values(meshCa.root).join(', ');
  out.push(
    text(
      MARGIN,
      caTop + 140,
      `Service mesh CA: ${meshCa.provider}${root ? ` (${root})` : ' (built-in, generated by the primary)'}`,
      { size: 12, fill: COLOURS[meshCaMark] },
    ),
  );
  out.push('</g>');

  const height = caTop + 160;
  const legend = (['added', 'changed', 'removed', 'unchanged'] as const)
    .map((m, i) => `${rect(MARGIN + i * 90, 46, 14, 14, m)}${text(MARGIN + i * 90 + 20, 58, m, { size: 11 })}`)
    .join('');
  const markers = (Object.keys(COLOURS) as Mark[])
    .map(
      (m) =>
        `<marker id="arrow-${m}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="${COLOURS[m]}"/></marker>`,
    )
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(`meshform plan of mesh ${after.mesh}`)}">`,
    `<defs>${markers}</defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    text(MARGIN, 32, `mesh ${after.mesh} — Consul ${after.consulVersion}${before ? '' : ' (nothing applied yet)'}`, {
      size: 16,
      weight: 'bold',
    }),
    legend,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
