/** `meshform plan` as text for a terminal and as Markdown for a pull-request comment. */
import type { ChangeAction } from '../constructs/private/mesh-diff';
import { MESHFORM, style } from './output';
import { NO_MIRROR, NOT_SELECTED, type PlanDocument, type StackPlan } from './plan';

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
      return style.dim(`skipped: ${stack.reason}${stack.reason === NO_MIRROR ? ' (see above)' : ''}`);
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

/** How to make the provider mirror an offline plan needs, said once for the whole plan. */
export function providerMirrorHint(plan: PlanDocument): string | undefined {
  if (plan.mode !== 'offline' || !plan.terraform.available) return undefined;
  const noMirror = plan.stacks.filter((s) => s.reason === NO_MIRROR).map((s) => s.stack);
  const missing = plan.stacks.filter((s) => s.reason?.startsWith('offline: provider ')).map((s) => s.stack);
  const stacks = noMirror.length > 0 ? noMirror : missing;
  if (stacks.length === 0) return undefined;
  const where = stacks.length === 1 ? `cdktf.out/stacks/${stacks[0]}` : 'cdktf.out/stacks/<stack>';
  return (
    `${noMirror.length > 0 ? `no provider mirror: ${stacks.length} stack${stacks.length === 1 ? '' : 's'} cannot be planned offline` : `the provider mirror ${plan.terraform.mirror} lacks providers of ${stacks.length} stack${stacks.length === 1 ? '' : 's'}`}. ` +
    `Make one where the registry is reachable: \`terraform providers mirror <dir>\` in ${where}${stacks.length > 1 ? ' (each stack)' : ''}, ` +
    `then export MESHFORM_TF_PROVIDER_MIRROR=<dir> (a mirror of hashicorp/aws under /opt, /usr/share, /usr/local/share, /var/lib or ~/.terraform.d is found by itself)`
  );
}

/** The command to run next, given how the plan ended; `args` are the options the next command needs too (--project, --secrets-dir). */
export function nextStep(plan: PlanDocument, args = ''): string {
  const run = (command: string) => `\`${MESHFORM} ${command}${args}\``;
  const gates = plan.meshes.flatMap((m) => m.gates);
  const failed = plan.stacks.filter((s) => s.status === 'failed').map((s) => s.stack);
  const unreadable = plan.meshes.flatMap((m) =>
    m.applied.filter((a) => a.source === 'unavailable' && !m.assumedUnapplied.includes(a.datacenter)),
  );
  const blocked = [...new Set(gates.filter((g) => g.status === 'fired' && !g.acknowledged).map((g) => g.id))];
  const acknowledged = [...new Set(gates.filter((g) => g.status === 'fired' && g.acknowledged).map((g) => g.id))];
  const allow = [...acknowledged, ...blocked].map((id) => ` --allow ${id}`).join('');
  if (failed.length > 0)
    return `fix what kept ${failed.join(', ')} from being planned (above), then ${run('plan')} again`;
  if (unreadable.length > 0)
    return `give meshform read access to the state of ${unreadable.map((u) => u.datacenter).join(', ')}, or state the assumption that it was never applied: ${run('plan --assume-unapplied')}`;
  if (plan.selectedStacks)
    return `${run('plan')} without --stack: only a plan of every stack tells the whole change, and deploy plans every stack`;
  if (blocked.length > 0)
    return `each blocked gate says the safe way; to go ahead as planned, acknowledge ${blocked.length === 1 ? 'it' : 'them'}: ${run(`deploy${allow}`)}`;
  if (!plan.terraform.available)
    return plan.terraform.reason?.includes('--no-terraform')
      ? `${run(`plan${allow}`)} (without --no-terraform) shows each stack's resource changes`
      : `install Terraform (1.x, on PATH or MESHFORM_TERRAFORM), then ${run('plan')} again`;
  if (plan.mode === 'offline')
    return `${run(`deploy${allow}`)} plans again with your credentials and backends, and asks before applying anything`;
  if (!plan.changes) return 'nothing to deploy: every stack matches what was applied';
  return `${run(`deploy${allow}`)} plans again, shows each saved plan's sha256 and asks before applying it`;
}

/** The plan for a terminal; `next` is the next-step line (plan ends with it, deploy goes on instead). */
export function renderPlanText(plan: PlanDocument, next?: string): string {
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
  const hint = providerMirrorHint(plan);
  if (hint) out.push(style.yellow(`  ${hint}`));
  if (plan.selectedStacks) {
    const others = plan.stacks.filter((s) => s.reason === NOT_SELECTED).map((s) => s.stack);
    out.push(
      style.yellow(
        `  partial plan: only ${plan.selectedStacks.join(', ')} planned (--stack); not planned: ${others.join(', ') || 'none'}. ` +
          'The mesh changes and the gates that compare with what was applied read every datacenter; the gates on resource changes (server-replacement, stateful-destroy) cover the planned stacks only',
      ),
    );
  }
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
  if (next) out.push(style.bold(`Next: ${next}`));
  return `${out.join('\n')}\n`;
}

/** Why the plan exits as it does. */
function exitMeaning(plan: PlanDocument): string {
  switch (plan.exitCode) {
    case 1:
      return plan.selectedStacks && !plan.stacks.some((s) => s.status === 'failed')
        ? 'the plan is partial (--stack): not every stack was planned'
        : 'the plan is incomplete (a stack was not planned, or a gate cannot be evaluated)';
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

/** The plan as a pull-request comment; `next` is the next-step line. */
export function renderPlanMarkdown(plan: PlanDocument, next?: string): string {
  const out: string[] = ['## meshform plan', ''];
  const gates = plan.meshes.flatMap((m) => m.gates);
  const blocked = gates.filter((g) => g.status === 'fired' && !g.acknowledged);
  if (plan.exitCode === 1)
    out.push('**The plan is incomplete** — a stack was not planned, or a gate cannot be evaluated.', '');
  if (plan.selectedStacks)
    out.push(`Partial plan: only ${plan.selectedStacks.map((s) => `\`${s}\``).join(', ')} planned (\`--stack\`).`, '');
  const hint = providerMirrorHint(plan);
  if (hint) out.push(`> ${cell(hint)}`, '');
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
  if (next) out.push(`**Next:** ${next}`, '');
  return `${out.join('\n')}\n`;
}
