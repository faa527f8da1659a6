/** `meshform plan` as text for a terminal and as Markdown for a pull-request comment. */
import type { ChangeAction } from '../constructs/private/mesh-diff';
import { style } from './output';
import type { PlanDocument, StackPlan } from './plan';

const SIGN: { readonly [A in ChangeAction]: string } = { create: '+', update: '~', delete: '-' };

function sign(action: ChangeAction): string {
  const s = SIGN[action];
  return action === 'create' ? style.green(s) : action === 'delete' ? style.red(s) : style.yellow(s);
}

function counts(stack: StackPlan): string {
  const c = stack.summary!.counts;
  return `${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to destroy`;
}

function comparedWith(mesh: PlanDocument['meshes'][number]): string {
  const assumed = mesh.assumedUnapplied.length
    ? ` (${mesh.assumedUnapplied.join(', ')} assumed never applied: --assume-unapplied)`
    : '';
  switch (mesh.comparedWith) {
    case 'nothing':
      return `nothing applied yet: everything is to create${assumed}`;
    case 'applied':
      return 'what every datacenter applied (recorded in its Terraform state)';
    case 'partly-applied':
      return `what the applied datacenters recorded; the others are to create${assumed}`;
    case 'unreadable':
      return 'what the datacenters applied, but some records cannot be read: the plan is incomplete';
  }
}

/** The status of a stack that was not planned, as one line. */
function notPlanned(stack: StackPlan): string {
  switch (stack.status) {
    case 'skipped':
      return style.dim(`skipped: ${stack.reason}`);
    case 'remote':
      return style.dim(`planned remotely: ${stack.reason}`);
    case 'waiting':
      return style.yellow(`waiting: ${stack.reason}`);
    default:
      return style.red(`NOT PLANNED: ${stack.reason}`);
  }
}

/** Terraform's whole error, indented under its stack. */
function errorLines(stack: StackPlan): string[] {
  return stack.error ? stack.error.split('\n').map((l) => style.dim(`      │ ${l}`)) : [];
}

/** The plan for a terminal. */
export function renderPlanText(plan: PlanDocument): string {
  const out: string[] = [];
  for (const a of plan.assumptions) out.push(style.yellow(`ASSUMED: ${a}`));
  if (plan.assumptions.length > 0) out.push('');
  for (const mesh of plan.meshes) {
    out.push(style.bold(`mesh ${mesh.mesh}`) + style.dim(` — compared with ${comparedWith(mesh)}`));
    out.push('');
    out.push(style.bold('Mesh changes'));
    const unreadable = mesh.applied.filter(
      (a) => a.source === 'unavailable' && !mesh.assumedUnapplied.includes(a.datacenter),
    );
    for (const a of unreadable)
      out.push(style.red(`  ? datacenter ${a.datacenter}: what it applied is unknown (${a.stack}: ${a.detail})`));
    if (mesh.changes.length === 0 && unreadable.length === 0) out.push('  no change');
    for (const c of mesh.changes) out.push(`  ${sign(c.action)} ${c.summary}`);
    if (mesh.certificates.length > 0) {
      out.push('');
      out.push(
        style.bold('CA material') +
          style.dim(' (in the secret store; reaches the datacenters through the secret variables)'),
      );
      for (const line of mesh.certificates) out.push(`  ${line}`);
    }
    out.push('');
  }
  out.push(
    style.bold('Terraform') +
      style.dim(
        plan.terraform.available
          ? ` ${plan.terraform.version}, ${plan.mode === 'offline' ? `offline (fake credentials, ${plan.terraform.mirror ? 'local provider mirror' : 'no provider mirror found'}, local state only, no refresh)` : 'with your credentials and backends'}; plan run ${plan.run}`
          : ` not run: ${plan.terraform.reason}`,
      ),
  );
  const width = Math.max(...plan.stacks.map((s) => s.stack.length));
  for (const stack of plan.stacks) {
    const name = style.cyan(stack.stack.padEnd(width));
    if (stack.status === 'planned') {
      const empty = stack.summary!.resources.length === 0;
      out.push(
        `  ${name}  ${stack.destroy ? style.red('TO DESTROY (left the app): ') : ''}${empty ? style.dim('no resource changes') : counts(stack)}${stack.summary!.outputsChanged.length ? style.dim(` (outputs: ${stack.summary!.outputsChanged.join(', ')})`) : ''}`,
      );
      for (const r of stack.summary!.resources.filter((r) => r.action === 'replace' || r.action === 'delete')) {
        out.push(
          `      ${r.action === 'delete' ? style.red('-') : style.yellow('±')} ${r.address}${r.constructPath ? style.dim(` (${r.constructPath})`) : ''}${r.replaceBecause ? ` because ${r.replaceBecause.join(', ')} changes` : ''}`,
        );
      }
      if (stack.planSha256) out.push(style.dim(`      saved plan ${stack.planFile} sha256 ${stack.planSha256}`));
    } else {
      out.push(`  ${name}  ${stack.destroy ? style.red('TO DESTROY (left the app): ') : ''}${notPlanned(stack)}`);
      out.push(...errorLines(stack));
    }
  }
  out.push('');
  const gates = plan.meshes.flatMap((m) => m.gates);
  out.push(style.bold('Gates'));
  if (gates.length === 0) out.push(`  ${style.green('✓')} none fired`);
  const unevaluable = gates.filter((g) => g.status === 'cannot-evaluate');
  if (unevaluable.length > 0) {
    const first = unevaluable[0]!;
    out.push(
      `  ${style.red('? CANNOT EVALUATE')} ${unevaluable.map((g) => g.id).join(', ')} — ${first.subject}`,
      `      ${first.message}`,
    );
  }
  for (const g of gates.filter((g) => g.status === 'fired')) {
    out.push(`  ${g.acknowledged ? style.yellow('! acknowledged') : style.red('✗ BLOCKED')} ${g.id} — ${g.subject}`);
    out.push(`      ${g.message}`);
    if (!g.acknowledged) out.push(`      acknowledge with ${style.bold(g.acknowledgeWith)}`);
  }
  out.push('');
  for (const mesh of plan.meshes) out.push(`Picture: ${mesh.picture}`);
  out.push(style.dim(`Exit ${plan.exitCode}: ${exitMeaning(plan)}`));
  return `${out.join('\n')}\n`;
}

/** Why the plan exits as it does. */
function exitMeaning(plan: PlanDocument): string {
  switch (plan.exitCode) {
    case 1:
      return 'the plan is incomplete (a stack was not planned, or a gate cannot be evaluated)';
    case 2:
      return 'changes to apply';
    case 3:
      return 'a gate blocked';
    default:
      return plan.changes ? 'planned (changes to apply; --detailed-exitcode exits 2 for them)' : 'no change';
  }
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The plan as a pull-request comment. */
export function renderPlanMarkdown(plan: PlanDocument): string {
  const out: string[] = ['## meshform plan', ''];
  const gates = plan.meshes.flatMap((m) => m.gates);
  const blocked = gates.filter((g) => g.status === 'fired' && !g.acknowledged);
  if (plan.exitCode === 1)
    out.push('**The plan is incomplete** — a stack was not planned, or a gate cannot be evaluated.', '');
  for (const a of plan.assumptions) out.push(`> Assumed: ${cell(a)}`, '');
  out.push(
    blocked.length > 0
      ? `**${blocked.length} gate${blocked.length === 1 ? '' : 's'} blocked** — this change needs an explicit acknowledgement.`
      : gates.length > 0
        ? 'Gates fired and were acknowledged.'
        : 'No gate fired.',
  );
  out.push('');
  for (const mesh of plan.meshes) {
    out.push(`### Mesh \`${mesh.mesh}\``, '', `Compared with ${comparedWith(mesh)}.`, '');
    if (mesh.changes.length === 0) out.push('No change.', '');
    else {
      out.push('| | change |', '| --- | --- |');
      for (const c of mesh.changes)
        out.push(`| ${SIGN[c.action] === '-' ? '➖' : SIGN[c.action] === '+' ? '➕' : '✏️'} | ${cell(c.summary)} |`);
      out.push('');
    }
    if (mesh.certificates.length > 0) {
      out.push('CA material:', '', ...mesh.certificates.map((l) => `- ${cell(l)}`), '');
    }
  }
  out.push('### Terraform', '');
  out.push(
    plan.terraform.available
      ? `Terraform ${plan.terraform.version}, ${plan.mode === 'offline' ? 'offline plan (fake credentials, local provider mirror, no refresh)' : "planned with the stacks' backends"}.`
      : `Terraform not run: ${plan.terraform.reason}.`,
  );
  out.push('', '| stack | create | update | replace | destroy | note |', '| --- | ---: | ---: | ---: | ---: | --- |');
  for (const s of plan.stacks) {
    const name = `\`${s.stack}\`${s.destroy ? ' (to destroy: left the app)' : ''}`;
    if (s.summary) {
      const c = s.summary.counts;
      const replaced = s.summary.resources
        .filter((r) => r.action === 'replace')
        .map((r) => `\`${r.address}\`${r.replaceBecause ? ` (${r.replaceBecause.join(', ')})` : ''}`);
      out.push(
        `| ${name} | ${c.create} | ${c.update} | ${c.replace} | ${c.delete} | ${cell(replaced.length ? `replaces ${replaced.join(', ')}` : '')} |`,
      );
    } else {
      out.push(
        `| ${name} | | | | | ${cell(`${s.status === 'failed' ? '**not planned**' : s.status}: ${s.reason ?? ''}`)} |`,
      );
    }
  }
  out.push('');
  if (gates.length > 0) {
    out.push('### Gates', '');
    for (const g of gates) {
      out.push(
        g.status === 'cannot-evaluate'
          ? `- ❓ **cannot evaluate** \`${g.id}\` — ${cell(g.subject)}: ${cell(g.message)}.`
          : `- ${g.acknowledged ? '⚠️ acknowledged' : '⛔ **blocked**'} \`${g.id}\` — ${cell(g.subject)}: ${cell(g.message)}.${g.acknowledged ? '' : ` Acknowledge with \`${g.acknowledgeWith}\`.`}`,
      );
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
