/**
 * The shared backends of the secret store. A mesh's entry in the local store directory is the working copy;
 * its shared part — every file except the root keys and their passphrases, which never leave the machine
 * that holds them — is one document in the backend:
 *
 *   AWS Secrets Manager  the secret `<prefix><mesh>` (SecretBinary: gzip of the JSON document). A write is
 *                        optimistic: the new version is put under the label MESHFORM_PENDING, then AWSCURRENT
 *                        is moved to it with UpdateSecretVersionStage naming the version read as
 *                        RemoveFromVersionId, which fails when another run moved AWSCURRENT meanwhile.
 *   Terraform Cloud      variables of a variable set or workspace (category env): MESHFORM_STORE_<MESH>, the
 *                        public files (certificates, records) and a digest of the secret ones, readable;
 *                        MESHFORM_STORE_<MESH>_SECRETS, the secret files, sensitive (write-only: only Terraform
 *                        Cloud runs see it). A write holds MESHFORM_STORE_<MESH>_LOCK (created only when absent:
 *                        the API refuses a second variable of one key) and checks the revision it read.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { SecretStoreLocation } from '../secret-store-backend';
import { AwsCredentials, signV4 } from './aws-sigv4';
import { writeFileAtomic } from './store-files';
import { HttpUnreachableError, requestSync } from './sync-http';
import { describeTarget, TerraformCloudVariables, TfcVariable } from './terraform-cloud-api';

/** The shared files of a mesh's entry: path relative to the entry → content. */
export type SharedFiles = { [file: string]: string };

/** The shared document as a backend holds it. */
export interface RemoteDocument {
  /** The backend's version of it (compare-and-swap). */
  readonly version: string;
  /** The files the backend can give back. */
  readonly files: SharedFiles;
  /**
   * Digest of the whole shared set (all files, readable or not), as the writer computed it; the files are
   * complete when `readable` is 'all'.
   */
  readonly digest: string;
  readonly readable: 'all' | 'public';
}

/** A backend refused or failed: the message says which and the fix. */
export class RemoteStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RemoteStoreError';
  }
}

/** The store changed in the backend since this run read it. */
export class RemoteConflictError extends RemoteStoreError {}

/** Files that never leave the local store: a root's key and its stored passphrase. */
export function isPrivateFile(file: string): boolean {
  return /^ca\/roots\/[^/]+\/(key\.pem|passphrase)$/.test(file);
}

/** Files whose content is secret (a key, a token, the gossip key): the rest (certificates, records) is public. */
export function isSecretFile(file: string): boolean {
  return /(^|\/)[^/]*key\.pem$/.test(file) || /\.(key|token)$/.test(file) || /(^|\/)passphrase$/.test(file);
}

/** The shared files of an entry directory (no private file, no lock, temporary or staged file). */
export function collectShared(dir: string): SharedFiles {
  const files: SharedFiles = {};
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    if (!fs.existsSync(abs)) return;
    for (const entry of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.') || entry.name.includes('.tmp-')) continue;
      const file = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile() && !isPrivateFile(file)) files[file] = fs.readFileSync(path.join(dir, file), 'utf8');
    }
  };
  walk('');
  return files;
}

/** Digest of a set of files (order-independent). */
export function digestFiles(files: SharedFiles): string {
  const canonical = JSON.stringify(
    Object.keys(files)
      .sort()
      .map((f) => [f, files[f]]),
  );
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * Writes the backend's files into an entry directory and removes shared files it no longer has; private
 * files stay. With `readable` 'public', the secret files there are left as they are (the backend cannot give
 * them back).
 */
export function applyShared(dir: string, files: SharedFiles, readable: 'all' | 'public'): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [file, content] of Object.entries(files)) {
    if (isPrivateFile(file) || file.split('/').some((p) => p === '..' || p === '' || p.startsWith('.')))
      throw new RemoteStoreError(`the shared store holds a file meshform does not write: ${JSON.stringify(file)}`);
    const target = path.join(dir, file);
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
    if (current !== content) writeFileAtomic(target, content, isSecretFile(file) ? 0o600 : 0o644);
  }
  for (const file of Object.keys(collectShared(dir))) {
    if (file in files || (readable === 'public' && isSecretFile(file))) continue;
    fs.rmSync(path.join(dir, file), { force: true });
  }
}

/** A shared backend of one mesh's entry. */
export interface RemoteBackend {
  /** How messages name it. */
  readonly description: string;
  /** The document, or undefined when the backend holds none for the mesh. */
  read(): RemoteDocument | undefined;
  /** Writes `files` when the backend still holds `expected` (undefined: none); returns the new version. */
  write(files: SharedFiles, expected: string | undefined): string;
}

/** The backend of a location (undefined for the local store). */
export function remoteBackend(location: SecretStoreLocation | undefined, mesh: string): RemoteBackend | undefined {
  if (!location || location.kind === 'local') return undefined;
  if (location.kind === 'aws-secrets-manager') return new SecretsManagerBackend(location, mesh);
  return new TerraformCloudBackend(location, mesh);
}

interface DocumentBody {
  readonly format: 1;
  readonly mesh: string;
  readonly files: SharedFiles;
}

const pack = (value: unknown) => gzipSync(Buffer.from(JSON.stringify(value))).toString('base64');
const unpack = <T>(text: string): T => JSON.parse(gunzipSync(Buffer.from(text, 'base64')).toString('utf8')) as T;

/** Credentials for AWS calls from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
function awsCredentials(description: string): AwsCredentials {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new RemoteStoreError(
      `${description}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), e.g. from \`aws configure export-credentials --format env\``,
    );
  return {
    accessKeyId,
    secretAccessKey,
    ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
  };
}

/** The label a version carries between PutSecretValue and the move of AWSCURRENT. */
const PENDING = 'MESHFORM_PENDING';

class SecretsManagerBackend implements RemoteBackend {
  public readonly description: string;
  private readonly name: string;
  private readonly url: string;

  constructor(
    private readonly location: Extract<SecretStoreLocation, { kind: 'aws-secrets-manager' }>,
    private readonly mesh: string,
  ) {
    this.name = `${location.prefix}${mesh}`;
    const endpoint = location.endpoint ?? process.env.MESHFORM_AWS_ENDPOINT;
    this.url = endpoint
      ? `${endpoint.replace(/\/$/, '')}/`
      : `https://secretsmanager.${location.region}.amazonaws.com/`;
    this.description = `AWS Secrets Manager secret ${this.name} (${location.region}${endpoint ? ` at ${endpoint}` : ''})`;
  }

  private call(action: string, input: object): { ok: boolean; type?: string; message?: string; json: any } {
    const body = JSON.stringify(input);
    const headers = signV4(
      {
        method: 'POST',
        url: this.url,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `secretsmanager.${action}` },
        body,
      },
      awsCredentials(this.description),
      this.location.region,
      'secretsmanager',
    );
    let response;
    try {
      response = requestSync({ method: 'POST', url: this.url, headers, body });
    } catch (e) {
      if (e instanceof HttpUnreachableError) throw new RemoteStoreError(`${this.description}: ${e.message}`);
      throw e;
    }
    let json: any;
    try {
      json = response.body ? JSON.parse(response.body) : {};
    } catch {
      json = {};
    }
    if (response.status >= 200 && response.status < 300) return { ok: true, json };
    const type = String(json.__type ?? json.code ?? `HTTP ${response.status}`).replace(/^.*#/, '');
    return { ok: false, type, message: String(json.message ?? json.Message ?? response.body.slice(0, 200)), json };
  }

  private failed(action: string, r: { type?: string; message?: string }): never {
    const denied = /AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|SignatureDoesNotMatch/.test(
      r.type ?? '',
    );
    throw new RemoteStoreError(
      `${this.description}: ${action} failed: ${r.type}: ${r.message}` +
        (denied
          ? `. Fix: give credentials allowed secretsmanager:GetSecretValue, PutSecretValue, CreateSecret, DescribeSecret and UpdateSecretVersionStage on ${this.name}`
          : ''),
    );
  }

  public read(): RemoteDocument | undefined {
    const r = this.call('GetSecretValue', { SecretId: this.name, VersionStage: 'AWSCURRENT' });
    if (!r.ok) {
      if (r.type === 'ResourceNotFoundException') return undefined;
      this.failed('GetSecretValue', r);
    }
    let body: DocumentBody;
    try {
      body = unpack<DocumentBody>(String(r.json.SecretBinary ?? ''));
    } catch {
      throw new RemoteStoreError(
        `${this.description} does not hold a meshform store document (not gzip JSON in SecretBinary). Fix: point the mesh's secretStore at another prefix, or delete that secret if it was never used`,
      );
    }
    if (body.format !== 1 || body.mesh !== this.mesh || typeof body.files !== 'object')
      throw new RemoteStoreError(
        `${this.description} holds a store document of another mesh or format (${JSON.stringify(body.mesh)}, format ${body.format}). Fix: use another prefix for this mesh`,
      );
    return { version: String(r.json.VersionId), files: body.files, digest: digestFiles(body.files), readable: 'all' };
  }

  public write(files: SharedFiles, expected: string | undefined): string {
    const binary = pack({ format: 1, mesh: this.mesh, files } satisfies DocumentBody);
    const token = randomUUID();
    if (expected === undefined) {
      const r = this.call('CreateSecret', {
        Name: this.name,
        SecretBinary: binary,
        ClientRequestToken: token,
        Description: `meshform secret store of mesh ${this.mesh} (root keys are never here)`,
      });
      if (!r.ok && r.type === 'ResourceExistsException')
        throw new RemoteConflictError(`${this.description} was created by another run while this one worked`);
      if (!r.ok) this.failed('CreateSecret', r);
      return String(r.json.VersionId ?? token);
    }
    const put = this.call('PutSecretValue', {
      SecretId: this.name,
      SecretBinary: binary,
      ClientRequestToken: token,
      VersionStages: [PENDING],
    });
    if (!put.ok) this.failed('PutSecretValue', put);
    const version = String(put.json.VersionId ?? token);
    const move = this.call('UpdateSecretVersionStage', {
      SecretId: this.name,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: version,
      RemoveFromVersionId: expected,
    });
    if (!move.ok) {
      if (move.type === 'InvalidParameterException' || move.type === 'ResourceNotFoundException')
        throw new RemoteConflictError(
          `${this.description} changed while this run worked (AWSCURRENT is no longer version ${expected})`,
        );
      this.failed('UpdateSecretVersionStage', move);
    }
    return version;
  }
}

interface TfcPublicBody {
  readonly format: 1;
  readonly mesh: string;
  readonly revision: number;
  readonly files: SharedFiles;
  /** Digest of every shared file, secret ones included. */
  readonly digest: string;
}

class TerraformCloudBackend implements RemoteBackend {
  public readonly description: string;
  private readonly keys: { public: string; secrets: string; lock: string };
  private client?: TerraformCloudVariables;

  constructor(
    private readonly location: Extract<SecretStoreLocation, { kind: 'terraform-cloud' }>,
    private readonly mesh: string,
  ) {
    const stem = `MESHFORM_STORE_${mesh.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
    this.keys = { public: stem, secrets: `${stem}_SECRETS`, lock: `${stem}_LOCK` };
    this.description = describeTarget(location);
  }

  private api(): TerraformCloudVariables {
    this.client ??= new TerraformCloudVariables(this.location);
    return this.client;
  }

  private current(): { variables: TfcVariable[]; body?: TfcPublicBody } {
    const variables = this.api().list();
    const found = variables.find((v) => v.key === this.keys.public && v.category === 'env');
    if (!found) return { variables };
    try {
      return { variables, body: unpack<TfcPublicBody>(found.value ?? '') };
    } catch {
      throw new RemoteStoreError(
        `${this.description}: variable ${this.keys.public} is not a meshform store document (it must stay non-sensitive and unchanged). Fix: delete it and run \`meshform synth\` where the root key is`,
      );
    }
  }

  public read(): RemoteDocument | undefined {
    const { body } = this.current();
    if (!body) return undefined;
    if (body.format !== 1 || body.mesh !== this.mesh)
      throw new RemoteStoreError(
        `${this.description}: ${this.keys.public} holds the store of another mesh (${JSON.stringify(body.mesh)})`,
      );
    return { version: String(body.revision), files: body.files, digest: body.digest, readable: 'public' };
  }

  public write(files: SharedFiles, expected: string | undefined): string {
    const api = this.api();
    const holder = `${os.userInfo().username}@${os.hostname()} pid ${process.pid} since ${new Date().toISOString()}`;
    const lock = api.create({
      key: this.keys.lock,
      value: holder,
      description: 'meshform: a run is writing the store',
      category: 'env',
      sensitive: false,
    });
    if (!lock) {
      const held = api.list().find((v) => v.key === this.keys.lock);
      throw new RemoteConflictError(
        `${this.description} is being written by another run (${held?.value ?? 'unknown holder'}); if that run is gone, delete the variable ${this.keys.lock}`,
      );
    }
    try {
      const { variables, body } = this.current();
      const revision = body?.revision;
      if ((revision === undefined ? undefined : String(revision)) !== expected)
        throw new RemoteConflictError(
          `${this.description} changed while this run worked (revision ${revision ?? 'none'}, read ${expected ?? 'none'})`,
        );
      const secrets = Object.fromEntries(Object.entries(files).filter(([f]) => isSecretFile(f)));
      const publicFiles = Object.fromEntries(Object.entries(files).filter(([f]) => !isSecretFile(f)));
      const next = (revision ?? 0) + 1;
      const put = (key: string, value: string, sensitive: boolean, description: string) => {
        const existing = variables.find((v) => v.key === key && v.category === 'env');
        const input = { key, value, description, category: 'env' as const, sensitive };
        if (existing) api.update(existing.id, input);
        else if (!api.create(input))
          throw new RemoteConflictError(`${this.description}: ${key} appeared while this run wrote it`);
      };
      // the secret files first: the public document (the version readers see) names their digest
      put(
        this.keys.secrets,
        pack(secrets),
        true,
        `meshform secret store of mesh ${this.mesh}: keys and tokens (sha256:${digestFiles(secrets)})`,
      );
      put(
        this.keys.public,
        pack({
          format: 1,
          mesh: this.mesh,
          revision: next,
          files: publicFiles,
          digest: digestFiles(files),
        } satisfies TfcPublicBody),
        false,
        `meshform secret store of mesh ${this.mesh}: certificates and records, revision ${next}`,
      );
      return String(next);
    } finally {
      api.remove(lock.id);
    }
  }
}
