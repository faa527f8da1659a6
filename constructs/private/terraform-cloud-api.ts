/**
 * The few Terraform Cloud (and Terraform Enterprise) API calls meshform makes, synchronously (see sync-http):
 * find a workspace or a variable set by name, list, create, update and delete its variables. JSON:API
 * documents (`application/vnd.api+json`) under `https://<hostname>/api/v2`, with a bearer token.
 *
 * Endpoints (Terraform Cloud API docs, "Workspace Variables" and "Variable Sets"):
 *   GET    /organizations/:org/workspaces/:name          a workspace by name
 *   GET    /organizations/:org/varsets                    the organization's variable sets (paged)
 *   GET    /workspaces/:id/vars                           POST (create), PATCH/DELETE /workspaces/:id/vars/:var_id
 *   GET    /varsets/:id/relationships/vars                POST, PATCH/DELETE /varsets/:id/relationships/vars/:var_id
 * A sensitive variable's value is never returned (it is null): it is write-only.
 */
import { HttpUnreachableError, requestSync } from './sync-http';

/** A variable as the API lists it. */
export interface TfcVariable {
  readonly id: string;
  readonly key: string;
  /** null for a sensitive variable. */
  readonly value: string | null;
  readonly description: string | null;
  readonly category: 'terraform' | 'env';
  readonly sensitive: boolean;
  readonly hcl: boolean;
}

/** What a variable is written with. */
export interface TfcVariableInput {
  readonly key: string;
  readonly value: string;
  readonly description: string;
  readonly category: 'terraform' | 'env';
  readonly sensitive: boolean;
}

/** Where variables are: a workspace or a variable set. */
export interface TfcTarget {
  readonly hostname: string;
  readonly organization: string;
  readonly workspace?: string;
  readonly variableSet?: string;
}

/** An API call that did not succeed; `status` 0 when the host did not answer. */
export class TerraformCloudError extends Error {
  constructor(
    message: string,
    public readonly status: number,
  ) {
    super(message);
    this.name = 'TerraformCloudError';
  }
}

/** The variable Terraform reads a host's token from: TF_TOKEN_app_terraform_io for app.terraform.io. */
export function tokenVariable(hostname: string): string {
  return `TF_TOKEN_${hostname.replace(/-/g, '__').replace(/\./g, '_').replace(/:/g, '_')}`;
}

/** The environment variables a token for `hostname` is read from, in order. */
export function tokenVariables(hostname: string): string[] {
  return [tokenVariable(hostname), 'TFE_TOKEN'];
}

/** `workspace shop-east` or `variable set "meshform"` in organization acme. */
export function describeTarget(target: TfcTarget): string {
  const what =
    target.workspace !== undefined ? `workspace ${target.workspace}` : `variable set "${target.variableSet}"`;
  return `Terraform Cloud ${what} of organization ${target.organization}${target.hostname === 'app.terraform.io' ? '' : ` on ${target.hostname}`}`;
}

/** A client of one workspace's or variable set's variables. */
export class TerraformCloudVariables {
  private readonly token: string;
  private readonly base: string;
  private collection?: string;

  constructor(public readonly target: TfcTarget) {
    const names = tokenVariables(target.hostname);
    const token = names.map((n) => process.env[n]).find((t) => t !== undefined && t.trim() !== '');
    if (!token)
      throw new TerraformCloudError(
        `no API token for ${target.hostname}: set ${names.join(' or ')} (a team or user token that may write variables of ${describeTarget(target)})`,
        401,
      );
    this.token = token.trim();
    // an https host, or http for a stand-in on the loopback address (tests)
    const scheme = /^(127\.0\.0\.1|localhost)(:\d+)?$/.test(target.hostname) ? 'http' : 'https';
    this.base = `${scheme}://${target.hostname}/api/v2`;
  }

  private call(method: string, path: string, body?: unknown): { status: number; json: any } {
    let response;
    try {
      response = requestSync({
        method,
        url: `${this.base}${path}`,
        headers: {
          Authorization: `Bearer ${this.token}`,
          'Content-Type': 'application/vnd.api+json',
          Accept: 'application/vnd.api+json',
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      if (e instanceof HttpUnreachableError)
        throw new TerraformCloudError(`${describeTarget(this.target)}: ${e.message}`, 0);
      throw e;
    }
    let json: any;
    try {
      json = response.body ? JSON.parse(response.body) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, json };
  }

  private fail(what: string, status: number, json: any): never {
    const detail = Array.isArray(json?.errors)
      ? json.errors
          .map((e: { title?: string; detail?: string }) => [e.title, e.detail].filter(Boolean).join(': '))
          .join('; ')
      : '';
    const hint =
      status === 401
        ? `the token in ${tokenVariables(this.target.hostname).join(' or ')} was refused (unauthorized): give a valid team or user token`
        : status === 403
          ? 'the token may not do this: give it permission to read and write variables there'
          : status === 404
            ? `not found, or the token may not see it: check the organization and ${this.target.workspace !== undefined ? 'workspace' : 'variable set'} name and the token's access`
            : `HTTP ${status}${detail ? ` (${detail})` : ''}`;
    throw new TerraformCloudError(`${describeTarget(this.target)}: ${what} failed: ${hint}`, status);
  }

  /** The path of the variables collection (workspace or variable set), found once. */
  private vars(): string {
    if (this.collection) return this.collection;
    const org = encodeURIComponent(this.target.organization);
    if (this.target.workspace !== undefined) {
      const { status, json } = this.call(
        'GET',
        `/organizations/${org}/workspaces/${encodeURIComponent(this.target.workspace)}`,
      );
      if (status !== 200 || typeof json?.data?.id !== 'string') this.fail('finding the workspace', status, json);
      this.collection = `/workspaces/${json.data.id}/vars`;
      return this.collection;
    }
    for (let page = 1; page < 100; page++) {
      const { status, json } = this.call(
        'GET',
        `/organizations/${org}/varsets?page%5Bnumber%5D=${page}&page%5Bsize%5D=100`,
      );
      if (status !== 200 || !Array.isArray(json?.data)) this.fail('listing the variable sets', status, json);
      const found = json.data.find((v: any) => v?.attributes?.name === this.target.variableSet);
      if (found) {
        this.collection = `/varsets/${found.id}/relationships/vars`;
        return this.collection;
      }
      if (!json.meta?.pagination?.['next-page']) break;
    }
    this.fail('finding the variable set', 404, undefined);
  }

  /** Every variable there (all pages). */
  public list(): TfcVariable[] {
    const out: TfcVariable[] = [];
    for (let page = 1; page < 100; page++) {
      const { status, json } = this.call('GET', `${this.vars()}?page%5Bnumber%5D=${page}&page%5Bsize%5D=100`);
      if (status !== 200 || !Array.isArray(json?.data)) this.fail('listing the variables', status, json);
      for (const v of json.data) out.push({ id: v.id, ...v.attributes });
      if (!json.meta?.pagination?.['next-page']) break;
    }
    return out;
  }

  /** Creates a variable; undefined when one with its key and category exists already (HTTP 422). */
  public create(variable: TfcVariableInput): TfcVariable | undefined {
    const { status, json } = this.call('POST', this.vars(), {
      data: { type: 'vars', attributes: { ...variable, hcl: false } },
    });
    if (status === 422) return undefined;
    if (status !== 201 && status !== 200) this.fail(`creating variable ${variable.key}`, status, json);
    return { id: json.data.id, ...json.data.attributes };
  }

  /** Updates a variable's value, description and sensitivity. */
  public update(id: string, variable: TfcVariableInput): void {
    const { status, json } = this.call('PATCH', `${this.vars()}/${encodeURIComponent(id)}`, {
      data: { id, type: 'vars', attributes: { ...variable, hcl: false } },
    });
    if (status !== 200) this.fail(`updating variable ${variable.key}`, status, json);
  }

  /** Deletes a variable (already gone is fine). */
  public remove(id: string): void {
    const { status, json } = this.call('DELETE', `${this.vars()}/${encodeURIComponent(id)}`);
    if (status !== 204 && status !== 200 && status !== 404) this.fail('deleting a variable', status, json);
  }
}
