/**
 * `meshform plan --markdown`: the plan as one pull-request comment. Its first line is a marker a pipeline finds
 * to update the same comment on every push (a sticky comment); then the verdict, the gates as a table, each
 * mesh's topology as a Mermaid flowchart (rendered by the code host), its changes, and each stack's Terraform
 * plan collapsed in a `<details>` block.
 */
import type { MeshChange } from '../constructs/private/mesh-diff';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import type { MeshPlan, PlanDocument, StackPlan } from './plan';
import { comparedWith, exitMeaning, providerMirrorHint } from './plan-render';

/** The first line of the comment: a pipeline updates the comment that starts with it instead of adding one. */
export const PLAN_COMMENT_MARKER = '<!-- meshform-plan -->';

/** Resources listed per stack; a longer plan says how many more (a comment holds at most 65,536 characters). */
const LISTED_RESOURCES = 60;

/**
 * Text for a Markdown table cell or line: one line, pipes escaped, angle brackets as entities outside code spans
 * (inside one, an entity would show as typed).
 */
export function cell(text: string): string {
  return text
    .replace(/\n/g, ' ')
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('')
    .replace(/\|/g, '\\|');
}

/** Text inside a Markdown code span (backticks doubled around one that holds a backtick). */
function code(text: string): string {
  const clean = text.replace(/\n/g, ' ');
  return clean.includes('`') ? `\`\` ${clean} \`\`` : `\`${clean}\``;
}

const ACTION_ICON: { readonly [action: string]: string } = {
  create: '➕',
  update: '✏️',
  replace: '±',
  delete: '➖',
};

/** A Mermaid node id from a name (letters, digits and underscores). */
function nodeId(prefix: string, name: string): string {
  return `${prefix}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** A Mermaid quoted label: double quotes and angle brackets as entities, `<br/>` kept for line breaks. */
function label(...lines: string[]): string {
  const escape = (l: string) =>
    l.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
  return `"${lines.map(escape).join('<br/>')}"`;
}

/**
 * The mesh's topology as a Mermaid flowchart: each datacenter (a subgraph: its servers and its mesh gateway,
 * the primary marked), federation from each secondary's gateway to the primary's, network peerings, and the
 * datacenters this change adds, changes or removes (classes `added`, `changed`, `removed`).
 */
export function topologyMermaid(mesh: MeshManifest, changes: readonly MeshChange[]): string {
  const lines = ['graph LR'];
  const touched = (dc: string, action?: MeshChange['action']) =>
    changes.some(
      (c) => c.datacenter === dc && (action === undefined || (c.kind === 'datacenter' && c.action === action)),
    );
  const classes: { [cls: string]: string[] } = { primary: [], added: [], changed: [], removed: [] };
  for (const dc of mesh.datacenters) {
    const id = nodeId('dc', dc.name);
    const gw = dc.meshGateway;
    lines.push(`  subgraph ${id}[${label(`${dc.name}${dc.primary ? ' (primary)' : ''}`)}]`);
    lines.push(
      `    ${id}_servers[${label(`${dc.servers} Consul server${dc.servers === 1 ? '' : 's'}`, `${dc.platform} on ${dc.cloud}`)}]`,
    );
    lines.push(
      `    ${id}_gateway([${label('mesh gateway', gw.address ? `${gw.address}:${gw.port}` : `port ${gw.port} (address at apply)`, `reach: ${gw.reach}`)}])`,
    );
    lines.push(`    ${id}_servers --- ${id}_gateway`);
    lines.push('  end');
    if (dc.primary) classes.primary!.push(id);
    if (touched(dc.name, 'create')) classes.added!.push(id);
    else if (touched(dc.name)) classes.changed!.push(id);
  }
  for (const c of changes.filter((c) => c.kind === 'datacenter' && c.action === 'delete' && c.datacenter)) {
    const id = nodeId('dc', c.datacenter!);
    lines.push(`  ${id}[${label(`${c.datacenter} (removed)`)}]`);
    classes.removed!.push(id);
  }
  for (const link of mesh.federation) {
    lines.push(`  ${nodeId('dc', link.from)}_gateway -->|${label('WAN federation')}| ${nodeId('dc', link.to)}_gateway`);
  }
  const peered = new Set<string>();
  for (const dc of mesh.datacenters) {
    for (const other of dc.peeredWith ?? []) {
      const key = [dc.name, other].sort().join(' ');
      if (peered.has(key) || !mesh.datacenters.some((d) => d.name === other)) continue;
      peered.add(key);
      lines.push(`  ${nodeId('dc', dc.name)} -.-|${label('network peering')}| ${nodeId('dc', other)}`);
    }
  }
  lines.push(
    '  classDef primary stroke-width:3px',
    '  classDef added fill:#dafbe1,stroke:#1a7f37',
    '  classDef changed fill:#fff8c5,stroke:#9a6700',
    '  classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4',
  );
  for (const [cls, ids] of Object.entries(classes)) if (ids.length > 0) lines.push(`  class ${ids.join(',')} ${cls}`);
  return lines.join('\n');
}

/** The verdict in a few words, with its icon. */
function verdict(plan: PlanDocument): string {
  const gates = plan.meshes.flatMap((m) => m.gates);
  const blocked = gates.filter((g) => g.status === 'fired' && !g.acknowledged).length;
  if (plan.exitCode === 1) return '❓ incomplete: it cannot tell the whole change';
  if (blocked > 0) return `⛔ ${blocked} gate${blocked === 1 ? '' : 's'} blocked`;
  return plan.changes ? '📝 changes to apply' : '✅ no change';
}

function counts(stack: StackPlan): string {
  const c = stack.summary!.counts;
  return `${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to destroy`;
}

/** The gates of every mesh as one table. */
function gatesTable(plan: PlanDocument): string[] {
  const rows = plan.meshes.flatMap((m) => m.gates.map((g) => ({ mesh: m.mesh, g })));
  if (rows.length === 0) return ['No gate fired.', ''];
  const out = ['| | gate | mesh | subject | why, and how to go ahead |', '| --- | --- | --- | --- | --- |'];
  for (const { mesh, g } of rows) {
    const status =
      g.status === 'cannot-evaluate' ? '❓ cannot evaluate' : g.acknowledged ? '⚠️ acknowledged' : '⛔ **blocked**';
    const how = g.status === 'fired' && g.acknowledged ? '' : ` Go ahead with ${code(g.acknowledgeWith)}.`;
    const why = /[.!?]$/.test(g.message.trim()) ? g.message.trim() : `${g.message.trim()}.`;
    out.push(`| ${status} | ${code(g.id)} | ${cell(mesh)} | ${cell(g.subject)} | ${cell(why)}${how} |`);
  }
  return [...out, ''];
}

/** One mesh: what it is compared with, its topology, its changes, its CA material. */
function meshSection(mesh: MeshPlan, manifest: MeshManifest | undefined): string[] {
  const out = [`### Mesh ${code(mesh.mesh)}`, '', `Compared with ${comparedWith(mesh)}.`, ''];
  const unreadable = mesh.applied.filter(
    (a) => a.source === 'unavailable' && !mesh.assumedUnapplied.includes(a.datacenter),
  );
  for (const a of unreadable)
    out.push(`- ❓ datacenter ${code(a.datacenter)}: what it applied is unknown (${cell(a.detail)})`);
  if (unreadable.length > 0) out.push('');
  if (manifest) out.push('```mermaid', topologyMermaid(manifest, mesh.changes), '```', '');
  if (mesh.changes.length === 0) out.push('No mesh change.', '');
  else {
    out.push('| | change |', '| --- | --- |');
    for (const c of mesh.changes) out.push(`| ${ACTION_ICON[c.action]} | ${cell(c.summary)} |`);
    out.push('');
  }
  if (mesh.certificates.length > 0) out.push('CA material:', '', ...mesh.certificates.map((l) => `- ${cell(l)}`), '');
  return out;
}

/** One stack, collapsed: its counts in the summary line, its resource changes and where its plan is inside. */
function stackDetails(stack: StackPlan): string[] {
  const name = `<code>${stack.stack.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</code>`;
  const gone = stack.destroy ? ' (left the app: to destroy)' : '';
  const what =
    stack.status === 'planned'
      ? stack.summary!.resources.length === 0
        ? 'no resource changes'
        : counts(stack)
      : stack.status === 'failed'
        ? '❗ not planned'
        : stack.status;
  const out = ['<details>', `<summary>${name}${gone} — ${what}</summary>`, ''];
  if (stack.remote)
    out.push(
      `Planned in Terraform Cloud: ${stack.remote.mode} plan, run [${stack.remote.run}](${stack.remote.url}).`,
      '',
    );
  if (stack.status !== 'planned') out.push(cell(stack.reason ?? ''), '');
  if (stack.error) out.push('```text', stack.error.replace(/```/g, "'''"), '```', '');
  const resources = stack.summary?.resources ?? [];
  if (resources.length > 0) {
    out.push('| | resource | construct | why |', '| --- | --- | --- | --- |');
    for (const r of resources.slice(0, LISTED_RESOURCES))
      out.push(
        `| ${ACTION_ICON[r.action]} ${r.action} | ${code(r.address)} | ${r.constructPath ? code(r.constructPath) : ''} | ${r.replaceBecause ? cell(`${r.replaceBecause.join(', ')} changes`) : ''} |`,
      );
    if (resources.length > LISTED_RESOURCES) out.push('', `… and ${resources.length - LISTED_RESOURCES} more.`);
    out.push('');
  }
  if (stack.summary && stack.summary.outputsChanged.length > 0)
    out.push(`Outputs that change: ${stack.summary.outputsChanged.map(code).join(', ')}.`, '');
  if (stack.planSha256) out.push(`Saved plan sha256 ${code(stack.planSha256)}.`, '');
  out.push('</details>', '');
  return out;
}

/**
 * The plan as one pull-request comment; `next` is the next-step line, `manifests` the meshes planned (for their
 * topology pictures).
 */
export function renderPlanMarkdown(plan: PlanDocument, next?: string, manifests: readonly MeshManifest[] = []): string {
  const out: string[] = [PLAN_COMMENT_MARKER, `## meshform plan: ${verdict(plan)}`, ''];
  out.push(`Exit ${plan.exitCode}: ${exitMeaning(plan)}.`, '');
  if (plan.selectedStacks)
    out.push(`Partial plan: only ${plan.selectedStacks.map(code).join(', ')} planned (\`--stack\`).`, '');
  const hint = providerMirrorHint(plan);
  if (hint) out.push(`> ${cell(hint)}`, '');
  for (const a of plan.assumptions) out.push(`> Assumed: ${cell(a)}`, '');
  out.push('### Gates', '', ...gatesTable(plan));
  for (const mesh of plan.meshes)
    out.push(
      ...meshSection(
        mesh,
        manifests.find((m) => m.mesh === mesh.mesh),
      ),
    );
  out.push('### Stacks', '');
  out.push(
    plan.terraform.available
      ? `Terraform ${plan.terraform.version}, ${plan.mode === 'offline' ? 'offline plan (fake credentials, local provider mirror, no refresh)' : "planned with the stacks' backends"}; plan run ${code(plan.run)}. In dependency order:`
      : `Terraform not run: ${cell(plan.terraform.reason ?? '')}.`,
    '',
  );
  for (const stack of plan.stacks) out.push(...stackDetails(stack));
  if (next) out.push(`**Next:** ${next}`, '');
  return `${out.join('\n')}\n`;
}
