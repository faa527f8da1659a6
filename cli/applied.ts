/**
 * What each datacenter last applied: the `meshform_applied` output its control-plane stack keeps in its
 * Terraform state. Read from the stack's real plan when it was planned, else from a local state file, else from
 * Terraform Cloud's API, so a plan on a laptop and in a pipeline compare against the same thing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { APPLIED_OUTPUT, APPLIED_RECORD_FORMAT, AppliedRecord } from '../constructs/private/mesh-manifest';
import type { StackPlanSummary } from './terraform-plan';

/** Where a stack's last applied record came from. */
export type AppliedSource = 'terraform-plan' | 'state-file' | 'terraform-cloud' | 'none' | 'unavailable';

/** The outcome of looking for one stack's record. */
export interface AppliedLookup {
  readonly stack: string;
  readonly source: AppliedSource;
  /** The record, when the stack applied one. */
  readonly record?: AppliedRecord;
  /** What was read, or why nothing could be. */
  readonly detail: string;
}

/** The backend parts of a synthesized stack that say where its state is. */
export interface StackBackendJson {
  readonly terraform?: {
    readonly backend?: {
      readonly local?: { readonly path?: string };
      readonly s3?: { readonly bucket?: string; readonly key?: string };
    };
    readonly cloud?: {
      readonly hostname?: string;
      readonly organization?: string;
      readonly workspaces?: { readonly name?: string };
    };
  };
}

function parseRecord(value: unknown, stack: string): AppliedRecord | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const record = JSON.parse(value) as AppliedRecord;
    return record.format === APPLIED_RECORD_FORMAT && record.stack === stack ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The record in a state document (Terraform state format 4), if any. */
export function recordFromState(
  state: { outputs?: { [name: string]: { value?: unknown } } },
  stack: string,
): AppliedRecord | undefined {
  return parseRecord(state.outputs?.[APPLIED_OUTPUT]?.value, stack);
}

/** The token Terraform uses for a Terraform Cloud host: TF_TOKEN_<host> or the CLI credentials file. */
export function terraformCloudToken(hostname: string): string | undefined {
  const variable = `TF_TOKEN_${hostname.replace(/-/g, '__').replace(/\./g, '_')}`;
  if (process.env[variable]) return process.env[variable];
  const file = path.join(os.homedir(), '.terraform.d', 'credentials.tfrc.json');
  try {
    const credentials = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      credentials?: { [host: string]: { token?: string } };
    };
    return credentials.credentials?.[hostname]?.token;
  } catch {
    return undefined;
  }
}

/**
 * Reads a workspace's current state outputs through Terraform Cloud's API (`baseUrl`, e.g.
 * `https://app.terraform.io`). Resolves `undefined` when the workspace or its state does not exist yet.
 */
export async function terraformCloudOutputs(
  baseUrl: string,
  organization: string,
  workspace: string,
  token: string,
): Promise<{ [name: string]: unknown } | undefined> {
  const get = async (resource: string) => {
    const response = await fetch(`${baseUrl}/api/v2/${resource}`, {
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/vnd.api+json' },
    });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`${resource}: HTTP ${response.status}`);
    return (await response.json()) as { data: unknown };
  };
  const ws = (await get(
    `organizations/${encodeURIComponent(organization)}/workspaces/${encodeURIComponent(workspace)}`,
  )) as { data: { id: string } } | undefined;
  if (!ws) return undefined;
  const outputs = (await get(`workspaces/${ws.data.id}/current-state-version-outputs`)) as
    | { data: { attributes: { name: string; value: unknown } }[] }
    | undefined;
  if (!outputs) return undefined;
  return Object.fromEntries(outputs.data.map((o) => [o.attributes.name, o.attributes.value]));
}

/** Looks up what one stack last applied. */
export async function readAppliedRecord(
  stack: string,
  stackDir: string,
  stackJson: StackBackendJson,
  planned: StackPlanSummary | undefined,
  options: { readonly terraformCloudBaseUrl?: (hostname: string) => string } = {},
): Promise<AppliedLookup> {
  if (planned) {
    const record = parseRecord(planned.priorOutputs[APPLIED_OUTPUT], stack);
    if (record) return { stack, source: 'terraform-plan', record, detail: 'from the state, read by terraform plan' };
    if (planned.applied)
      return {
        stack,
        source: 'none',
        detail: 'its state holds no meshform record (applied by an older meshform or by hand)',
      };
    return { stack, source: 'none', detail: 'never applied' };
  }
  const backend = stackJson.terraform?.backend;
  const cloud = stackJson.terraform?.cloud;
  if (backend?.local) {
    const file = path.resolve(stackDir, backend.local.path ?? 'terraform.tfstate');
    if (!fs.existsSync(file)) return { stack, source: 'none', detail: 'never applied (no state file)' };
    const record = recordFromState(
      JSON.parse(fs.readFileSync(file, 'utf8')) as { outputs?: { [name: string]: { value?: unknown } } },
      stack,
    );
    return record
      ? { stack, source: 'state-file', record, detail: `from ${path.relative(process.cwd(), file) || file}` }
      : { stack, source: 'none', detail: 'its state holds no meshform record' };
  }
  if (cloud?.organization && cloud.workspaces?.name) {
    const hostname = cloud.hostname ?? 'app.terraform.io';
    const token = terraformCloudToken(hostname);
    if (!token) {
      return {
        stack,
        source: 'unavailable',
        detail: `no token for ${hostname} (TF_TOKEN_${hostname.replace(/-/g, '__').replace(/\./g, '_')} or terraform login)`,
      };
    }
    const base = options.terraformCloudBaseUrl?.(hostname) ?? `https://${hostname}`;
    try {
      const outputs = await terraformCloudOutputs(base, cloud.organization, cloud.workspaces.name, token);
      if (!outputs) return { stack, source: 'none', detail: `workspace ${cloud.workspaces.name} has no state yet` };
      const record = parseRecord(outputs[APPLIED_OUTPUT], stack);
      return record
        ? {
            stack,
            source: 'terraform-cloud',
            record,
            detail: `from workspace ${cloud.organization}/${cloud.workspaces.name}`,
          }
        : { stack, source: 'none', detail: `workspace ${cloud.workspaces.name} holds no meshform record` };
    } catch (e) {
      return { stack, source: 'unavailable', detail: `Terraform Cloud: ${(e as Error).message}` };
    }
  }
  if (backend?.s3)
    return {
      stack,
      source: 'unavailable',
      detail: 'its S3 state is read by terraform, which could not plan this stack here',
    };
  return { stack, source: 'unavailable', detail: 'unknown backend' };
}
