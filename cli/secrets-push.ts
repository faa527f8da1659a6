/**
 * `meshform secrets push`: each stack's sensitive variables into its Terraform Cloud workspace (or into one
 * variable set) as sensitive Terraform variables. Idempotent: a value's digest rides in the variable's
 * description (sensitive values cannot be read back), so a variable whose digest matches is left unchanged.
 * Reports created / updated / unchanged per variable name; never prints a value.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { secretInputs } from '../constructs/private/secret-inputs';
import { describeTarget, TerraformCloudVariables, TfcTarget } from '../constructs/private/terraform-cloud-api';
import type { SecretStore } from '../constructs/secret-store';
import { CliError, MESHFORM } from './output';
import { secretValues } from './secrets';
import { readOutputJson } from './synth';

/** What happened to one variable. */
export type PushAction = 'created' | 'updated' | 'unchanged';

/** One workspace's or variable set's push. */
export interface PushedTarget {
  readonly target: string;
  readonly organization: string;
  readonly workspace?: string;
  readonly variableSet?: string;
  /** The stacks whose variables these are. */
  readonly stacks: readonly string[];
  readonly variables: readonly { readonly name: string; readonly action: PushAction }[];
}

/** What `secrets push` did. */
export interface PushReport {
  readonly targets: readonly PushedTarget[];
  /** Stacks not on Terraform Cloud (without --variable-set): their variables were not pushed. */
  readonly skipped: readonly { readonly stack: string; readonly reason: string }[];
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
}

/** Where to push: each stack's workspace, or one variable set. */
export interface PushOptions {
  readonly variableSet?: string;
  readonly organization?: string;
  readonly hostname?: string;
}

/** The digest a pushed variable's description carries: namespaced by its name. */
export function valueDigest(name: string, value: string): string {
  return createHash('sha256').update(`meshform-variable\0${name}\0${value}`).digest('hex');
}

const DIGEST = /\(meshform sha256:([0-9a-f]{64})\)$/;

/** The secret variable names a synthesized stack declares. */
function declaredSecrets(outdir: string, stack: string, secret: ReadonlySet<string>): string[] {
  const json = readOutputJson<{ variable?: { [name: string]: unknown } }>(
    path.join(outdir, 'stacks', stack, 'cdk.tf.json'),
  );
  return Object.keys(json.variable ?? {})
    .filter((v) => secret.has(v))
    .sort();
}

/** Writes the variables to one target; returns what happened to each. */
function pushTo(
  target: TfcTarget,
  variables: readonly { name: string; value: string; description: string }[],
): { name: string; action: PushAction }[] {
  const api = new TerraformCloudVariables(target);
  const existing = api.list().filter((v) => v.category === 'terraform');
  return variables.map(({ name, value, description }) => {
    const digest = valueDigest(name, value);
    const input = {
      key: name,
      value,
      description: `${description} (meshform sha256:${digest})`,
      category: 'terraform' as const,
      sensitive: true,
    };
    const found = existing.find((v) => v.key === name);
    if (!found) {
      if (!api.create(input))
        throw new CliError(`${describeTarget(target)}: variable ${name} appeared while meshform pushed it: run again`);
      return { name, action: 'created' as const };
    }
    if (found.sensitive && !found.hcl && DIGEST.exec(found.description ?? '')?.[1] === digest)
      return { name, action: 'unchanged' as const };
    api.update(found.id, input);
    return { name, action: 'updated' as const };
  });
}

/** Pushes the meshes' secret variables (see the module comment). */
export function pushSecrets(
  store: SecretStore,
  meshes: readonly MeshManifest[],
  outdir: string,
  options: PushOptions,
): PushReport {
  const targets: PushedTarget[] = [];
  const skipped: { stack: string; reason: string }[] = [];
  const plans: { target: TfcTarget; stacks: string[]; names: Set<string> }[] = [];
  const values = new Map<string, { value: string; description: string }>();
  for (const mesh of meshes) {
    const descriptions = new Map(
      secretInputs(
        mesh.mesh,
        mesh.datacenters.map((dc) => ({
          name: dc.name,
          clientApi: mesh.ca.requests.find((r) => r.datacenter === dc.name)?.clientApi,
        })),
      ).map((i) => [i.variable, i.description]),
    );
    for (const { variable, value } of secretValues(store, mesh))
      values.set(variable, {
        value,
        description: descriptions.get(variable) ?? `meshform secret of mesh ${mesh.mesh}`,
      });
    const secret = new Set(mesh.secretVariables);
    for (const dc of mesh.datacenters) {
      for (const stack of dc.stacks) {
        const names = declaredSecrets(outdir, stack.name, secret);
        if (names.length === 0) continue;
        const cloud = stack.location.cloud;
        let target: TfcTarget | undefined;
        if (options.variableSet !== undefined) {
          const organization = options.organization ?? cloud?.organization;
          if (!organization)
            throw new CliError(
              `secrets push --variable-set needs --organization: stack ${stack.name} does not keep its state in Terraform Cloud`,
              2,
            );
          target = {
            hostname: options.hostname ?? cloud?.hostname ?? 'app.terraform.io',
            organization,
            variableSet: options.variableSet,
          };
        } else if (cloud) {
          target = {
            hostname: cloud.hostname ?? 'app.terraform.io',
            organization: cloud.organization,
            workspace: cloud.workspaces.name,
          };
        } else {
          skipped.push({
            stack: stack.name,
            reason: `its state is not in Terraform Cloud (${stack.state}): its variables come from \`${MESHFORM} secrets env\``,
          });
          continue;
        }
        const key = JSON.stringify(target);
        const plan = plans.find((p) => JSON.stringify(p.target) === key);
        if (plan) {
          plan.stacks.push(stack.name);
          for (const n of names) plan.names.add(n);
        } else plans.push({ target, stacks: [stack.name], names: new Set(names) });
      }
    }
  }
  if (plans.length === 0)
    throw new CliError(
      `no stack keeps its state in Terraform Cloud: push to a variable set with --variable-set <name> --organization <org> (or use ${MESHFORM} secrets env)`,
      2,
    );
  for (const plan of plans) {
    const variables = [...plan.names].sort().map((name) => ({ name, ...values.get(name)! }));
    targets.push({
      target: describeTarget(plan.target),
      organization: plan.target.organization,
      ...(plan.target.workspace !== undefined ? { workspace: plan.target.workspace } : {}),
      ...(plan.target.variableSet !== undefined ? { variableSet: plan.target.variableSet } : {}),
      stacks: plan.stacks,
      variables: pushTo(plan.target, variables),
    });
  }
  const count = (a: PushAction) => targets.reduce((n, t) => n + t.variables.filter((v) => v.action === a).length, 0);
  return { targets, skipped, created: count('created'), updated: count('updated'), unchanged: count('unchanged') };
}

/** The report as text: one line per variable (its name and what happened), never a value. */
export function renderPushReport(report: PushReport): string {
  const lines: string[] = [];
  for (const t of report.targets) {
    lines.push(`${t.target} (stacks ${t.stacks.join(', ')}):`);
    for (const v of t.variables) lines.push(`  ${v.action.padEnd(9)} ${v.name}`);
  }
  for (const s of report.skipped) lines.push(`skipped ${s.stack}: ${s.reason}`);
  lines.push(
    report.created + report.updated === 0
      ? `no change: ${report.unchanged} variable${report.unchanged === 1 ? '' : 's'} already up to date`
      : `${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged (sensitive: Terraform Cloud never shows the values)`,
  );
  return `${lines.join('\n')}\n`;
}
