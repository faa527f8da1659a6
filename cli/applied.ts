/**
 * What each datacenter last applied: the `meshform_applied` output its control-plane stack keeps in its
 * Terraform state, the one source of truth of a plan's baseline (never a synthesis). Read from the stack's
 * real plan when it was planned against its backend, else from a local state file, Terraform Cloud's API or
 * `terraform state pull`, so a plan on a laptop and in a pipeline compare against the same thing.
 *
 * Every lookup that cannot tell what was applied says so (`unavailable`, with why): a state that cannot be
 * read, an answer that does not tell "never applied" from "not allowed to see" (Terraform Cloud's 404), a
 * state with resources but no record. Only a positive "no state" is `none`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { APPLIED_OUTPUT, AppliedRecord } from '../constructs/private/mesh-manifest';
import { tokenVariable } from '../constructs/private/terraform-cloud-api';
import { pullState, TerraformEnvironment } from './terraform';
import { terraformCloudBaseUrl } from './terraform-cloud-plan';
import type { StackPlanSummary } from './terraform-plan';

/** Where a stack's last applied record came from. */
export type AppliedSource =
  | 'terraform-plan'
  | 'state-file'
  | 'terraform-cloud'
  | 'terraform-state'
  | 'none'
  | 'unavailable';

/** The outcome of looking for one stack's record. */
export interface AppliedLookup {
  readonly stack: string;
  /** `none`: known to hold nothing (never applied, or destroyed); `unavailable`: what it holds is unknown. */
  readonly source: AppliedSource;
  /** The record, when the stack applied one. */
  readonly record?: AppliedRecord;
  /** What was read, or why nothing could be. */
  readonly detail: string;
  /** How many resources its state holds, when that was read. */
  readonly resources?: number;
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

/** How states are read. */
export interface StateReading {
  /** Offline: only local state files are read (no cloud, no backend). */
  readonly offline: boolean;
  /** Terraform, to read a state in a backend meshform has no reader for (S3); absent when it cannot run. */
  readonly terraform?: TerraformEnvironment;
  /** Scratch directory for those reads. */
  readonly workDir?: string;
  /** Terraform Cloud's API base URL for a host (default `https://<host>`, or MESHFORM_TFC_API_URL). */
  readonly terraformCloudBaseUrl?: (hostname: string) => string;
}

type Parsed = { readonly record: AppliedRecord } | { readonly problem: string } | undefined;

/** The record in an output value, a problem when there is one that cannot be read, undefined when none. */
function parseRecord(value: unknown, stack: string): Parsed {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return { problem: `its ${APPLIED_OUTPUT} output is not a string` };
  try {
    const record = JSON.parse(value) as AppliedRecord;
    if (typeof record.format !== 'number' || record.manifest === undefined)
      return { problem: `its ${APPLIED_OUTPUT} output is not a meshform record` };
    if (record.stack !== stack) return { problem: `its ${APPLIED_OUTPUT} output is the record of ${record.stack}` };
    return { record };
  } catch (e) {
    return { problem: `its ${APPLIED_OUTPUT} output is not JSON (${(e as Error).message})` };
  }
}

/** The lookup for a state's outputs and resource count, read from `source`. */
function fromState(
  stack: string,
  source: Exclude<AppliedSource, 'none' | 'unavailable'>,
  where: string,
  outputs: { [name: string]: unknown },
  resources: number,
): AppliedLookup {
  const parsed = parseRecord(outputs[APPLIED_OUTPUT], stack);
  if (parsed && 'record' in parsed) return { stack, source, record: parsed.record, detail: `from ${where}`, resources };
  if (parsed) return { stack, source: 'unavailable', detail: `${where}: ${parsed.problem}`, resources };
  if (resources > 0 || Object.keys(outputs).length > 0)
    return {
      stack,
      source: 'unavailable',
      detail: `${where} holds ${resources} resource${resources === 1 ? '' : 's'} but no meshform record (applied by an older meshform or by hand): what it runs is unknown`,
      resources,
    };
  return { stack, source: 'none', detail: `${where} is empty (never applied, or destroyed)`, resources: 0 };
}

function stateOutputs(state: { outputs?: { [name: string]: { value?: unknown } } }): { [name: string]: unknown } {
  return Object.fromEntries(Object.entries(state.outputs ?? {}).map(([k, v]) => [k, v.value]));
}

/** The record in a state document (Terraform state format 4), if any. */
export function recordFromState(
  state: { outputs?: { [name: string]: { value?: unknown } } },
  stack: string,
): AppliedRecord | undefined {
  const parsed = parseRecord(state.outputs?.[APPLIED_OUTPUT]?.value, stack);
  return parsed && 'record' in parsed ? parsed.record : undefined;
}

/**
 * The token for a Terraform Cloud host: TF_TOKEN_<host> (as Terraform derives it from the host name), else
 * TFE_TOKEN, else the Terraform CLI's credentials file (`terraform login`).
 */
export function terraformCloudToken(hostname: string): string | undefined {
  const variable = tokenVariable(hostname);
  if (process.env[variable]) return process.env[variable];
  if (process.env.TFE_TOKEN) return process.env.TFE_TOKEN;
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

interface JsonApi {
  readonly data: {
    readonly id: string;
    readonly attributes?: { readonly [name: string]: unknown };
    readonly relationships?: { readonly [name: string]: { readonly data?: unknown } };
  };
}

/**
 * What a workspace's current state holds, through Terraform Cloud's API (`baseUrl`, e.g.
 * `https://app.terraform.io`). Terraform Cloud answers 404 both for "does not exist" and for "not allowed to
 * see" (its API reference, state-version-outputs): such an answer is never taken for "never applied".
 */
export async function terraformCloudState(
  stack: string,
  baseUrl: string,
  organization: string,
  workspace: string,
  token: string,
): Promise<AppliedLookup> {
  const name = `workspace ${organization}/${workspace}`;
  const get = async (resource: string, attempt = 1): Promise<JsonApi | number> => {
    let response: Response;
    try {
      response = await fetch(`${baseUrl}/api/v2/${resource}`, {
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/vnd.api+json' },
      });
    } catch (e) {
      // a kept-alive connection the server closed meanwhile: once more, on a new one
      if (attempt < 3) return get(resource, attempt + 1);
      throw e;
    }
    if (!response.ok) return response.status;
    return (await response.json()) as JsonApi;
  };
  const unavailable = (detail: string): AppliedLookup => ({ stack, source: 'unavailable', detail });
  const ws = await get(`organizations/${encodeURIComponent(organization)}/workspaces/${encodeURIComponent(workspace)}`);
  if (ws === 404)
    return unavailable(
      `Terraform Cloud answers 404 for ${name}: it does not exist, or the token may not read it (the API gives the same answer for both)`,
    );
  if (typeof ws === 'number') return unavailable(`Terraform Cloud answers HTTP ${ws} for ${name}`);
  const current = ws.data.relationships?.['current-state-version'];
  if (current && current.data === null)
    return { stack, source: 'none', detail: `${name} has no state yet`, resources: 0 };
  const version = await get(`workspaces/${ws.data.id}/current-state-version`);
  if (typeof version === 'number')
    return unavailable(`Terraform Cloud answers HTTP ${version} for the current state of ${name}`);
  if (version.data.attributes?.['resources-processed'] === false)
    return unavailable(`Terraform Cloud is still processing the current state of ${name}: plan again in a moment`);
  const outputs = await get(`workspaces/${ws.data.id}/current-state-version-outputs`);
  if (typeof outputs === 'number')
    return unavailable(
      `Terraform Cloud answers HTTP ${outputs} for the state outputs of ${name} (the token may lack permission to read state outputs)`,
    );
  const list = outputs.data as unknown as { attributes: { name: string; value: unknown } }[];
  const resources = Number(ws.data.attributes?.['resource-count'] ?? 0);
  return fromState(
    stack,
    'terraform-cloud',
    name,
    Object.fromEntries(list.map((o) => [o.attributes.name, o.attributes.value])),
    Number.isFinite(resources) ? resources : 0,
  );
}

/**
 * Looks up what one stack last applied. `planned` is its Terraform plan when that plan read the stack's own
 * state (online, or offline from its local state file): then the plan's prior state is the answer.
 */
export async function readAppliedRecord(
  stack: string,
  stackDir: string,
  stackJson: StackBackendJson,
  planned: StackPlanSummary | undefined,
  reading: StateReading,
): Promise<AppliedLookup> {
  if (planned) {
    const where = 'its state, read by terraform plan';
    return fromState(stack, 'terraform-plan', where, planned.priorOutputs, planned.priorResources);
  }
  const backend = stackJson.terraform?.backend;
  const cloud = stackJson.terraform?.cloud;
  if (backend?.local) {
    const file = path.resolve(stackDir, backend.local.path ?? 'terraform.tfstate');
    const shown = path.relative(process.cwd(), file) || file;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        return { stack, source: 'none', detail: 'never applied (no state file)', resources: 0 };
      return { stack, source: 'unavailable', detail: `state file ${shown} cannot be read: ${(e as Error).message}` };
    }
    let state: { outputs?: { [name: string]: { value?: unknown } }; resources?: unknown[] };
    try {
      state = JSON.parse(text) as typeof state;
    } catch (e) {
      return { stack, source: 'unavailable', detail: `state file ${shown} is not JSON (${(e as Error).message})` };
    }
    return fromState(stack, 'state-file', shown, stateOutputs(state), state.resources?.length ?? 0);
  }
  if (cloud?.organization && cloud.workspaces?.name) {
    const hostname = cloud.hostname ?? 'app.terraform.io';
    if (reading.offline)
      return {
        stack,
        source: 'unavailable',
        detail: `offline: its state in Terraform Cloud (${hostname}) is not read`,
      };
    const token = terraformCloudToken(hostname);
    if (!token)
      return {
        stack,
        source: 'unavailable',
        detail: `no token for ${hostname} (${tokenVariable(hostname)}, TFE_TOKEN or terraform login)`,
      };
    try {
      const base = reading.terraformCloudBaseUrl?.(hostname) ?? terraformCloudBaseUrl(hostname);
      return await terraformCloudState(stack, base, cloud.organization, cloud.workspaces.name, token);
    } catch (e) {
      return { stack, source: 'unavailable', detail: `Terraform Cloud (${hostname}): ${(e as Error).message}` };
    }
  }
  const kind = backend ? Object.keys(backend)[0] : 'unknown';
  if (reading.offline) return { stack, source: 'unavailable', detail: `offline: its ${kind} state is not read` };
  if (!reading.terraform || !reading.workDir)
    return {
      stack,
      source: 'unavailable',
      detail: `its ${kind} state is read with terraform, which does not run here`,
    };
  const pulled = await pullState(reading.terraform, stackJson, path.join(reading.workDir, stack));
  if (!pulled.ok) return { stack, source: 'unavailable', detail: `its ${kind} state cannot be read: ${pulled.error}` };
  if (!pulled.state)
    return { stack, source: 'none', detail: `its ${kind} state is empty (never applied)`, resources: 0 };
  return fromState(
    stack,
    'terraform-state',
    `its ${kind} state`,
    stateOutputs(pulled.state),
    pulled.state.resources?.length ?? 0,
  );
}
