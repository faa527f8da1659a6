import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from './errors';
import { replicationToken } from './private/acl';
import { CaMaterial } from './private/ca-material';
import { describeHolder, FileLock, LockBusyError } from './private/file-lock';
import { createGossipKey } from './private/pki';
import {
  applyShared,
  collectShared,
  digestFiles,
  RemoteBackend,
  remoteBackend,
  RemoteStoreError,
} from './private/remote-store';
import { isDatacenterName } from './private/validation';
import {
  readJsonFile,
  removeLeftoverFiles,
  repairDirectory,
  replaceDirectory,
  writeFileAtomic,
} from './private/store-files';
import { certificateFacts, keyMatchesCertificate, privateKeyPem, readPrivateKey } from './private/x509';
import {
  AwsSecretsManagerStoreBackend,
  AwsSecretsManagerStoreOptions,
  LocalStoreBackend,
  SecretStoreBackend,
  SecretStoreLocation,
  TerraformCloudStoreBackend,
  TerraformCloudStoreOptions,
} from './secret-store-backend';

/** The secrets every datacenter of one mesh shares (TLS material is per datacenter: see `ca()`). */
export interface MeshSecrets {
  /** Consul gossip encryption key (base64 of 32 bytes). */
  readonly gossipKey: string;
  /** ACL initial management token of the primary (only the primary's stacks receive it). */
  readonly aclBootstrapToken: string;
  /**
   * ACL replication token: created by the primary with least privilege, used by every secondary (and the
   * base of every derived VM token). Derived from the management token, so the store keeps no extra file.
   */
  readonly aclReplicationToken: string;
}

/** Facts about a mesh's stored secrets that are safe to print. */
export interface MeshSecretsInfo {
  /** Directory holding this mesh's secrets. */
  readonly directory: string;
  /** The shared backend the entry is kept in, when not only local. */
  readonly backend?: string;
  /** The roots in the store, with their SHA-256 fingerprints. */
  readonly roots: readonly { readonly id: string; readonly fingerprint: string; readonly unattended: boolean }[];
}

/** Options of a secret store. */
export interface SecretStoreOptions {
  /**
   * Directory of the store.
   * @default - $MESHFORM_SECRETS_DIR if set, else ".meshform" in the current directory
   */
  readonly directory?: string;
}

const FORMAT = 2;
/** In a mesh's entry: the version of the shared backend's document this working copy was last in step with. */
const REMOTE_STATE = '.remote.json';

/** A mesh's entry kept in a shared backend: the working copy's link to it. */
interface Connection {
  readonly backend: RemoteBackend;
  /** May this run write the backend (it holds the root key: `meshform synth`, `meshform ca`)? */
  readonly writable: boolean;
  /** The backend's version this working copy matches (undefined: the backend has none yet). */
  version: string | undefined;
  /** Digest of the working copy's shared files when it last matched the backend. */
  localDigest: string | undefined;
  /** What the backend gives back: everything, or the public files only (keys and tokens are write-only there). */
  readable: 'all' | 'public';
}

interface RemoteState {
  readonly backend: string;
  readonly version: string;
  readonly localDigest: string;
}
/** The store's lock file (in the store directory): held for every write. */
const LOCK_FILE = '.meshform.lock';
/** How long a write waits for another process's hold on the store. */
const LOCK_WAIT_MS = 120_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The fix for a store file meshform cannot use. */
const RESTORE_FIX =
  'restore the file (or the whole store directory) from your backup; if this mesh was never deployed, delete its directory in the store and run `meshform synth` to create new secrets';

const FILES = {
  index: 'store.json',
  gossipKey: 'gossip.key',
  aclBootstrapToken: 'acl-bootstrap.token',
  versions: 'versions.json',
} as const;

/** Per datacenter: the version of the secrets its stacks hold, and a SHA-256 of their values at that version. */
interface SecretVersions {
  readonly [datacenter: string]: { readonly version: number; readonly sha256: string };
}

interface StoreIndex {
  readonly format: number;
  readonly mesh: string;
  /** Format 1 only: SHA-256 fingerprint of the shared server CA. */
  readonly serverCaFingerprint?: string;
}

/**
 * meshform's local, git-ignored secret store: one directory per mesh holding the gossip key and ACL token
 * every datacenter shares, and the mesh's CA material (`ca()`: the offline root, cross-signed roots,
 * per-datacenter intermediates and server certificates).
 *
 * Created on first use. Files are written with mode 0600 in 0700 directories. Every write holds the store's
 * lock (`.meshform.lock`, naming its holder; another process waits for it), so two runs never interleave;
 * a new entry, a root and a datacenter's certificates are each written as one directory swapped into place,
 * so each is complete or absent, and the leftovers of an interrupted write are cleaned (or the write
 * finished) before the store is used. A file that cannot be read is refused naming it and the fix.
 * Synthesis never reads the store: secrets reach Terraform only as sensitive variables
 * (`meshform secrets env`). A store of format 1 (one shared server CA) is upgraded in place: its CA becomes
 * root `root-1`.
 *
 * A mesh may keep its entry in a shared backend, chosen in code with the mesh's `secretStore` prop:
 * `SecretStore.local()` (the default: this directory only), `SecretStore.awsSecretsManager({...})` or
 * `SecretStore.terraformCloud({...})`. The directory is then the working copy: `connect` brings it in step
 * with the backend, and each write (under the lock) is sent to the backend when it completes, refused when
 * the backend changed meanwhile. The root keys and their passphrases never leave the directory.
 */
export class SecretStore {
  /** Opens (without creating) the store at `options.directory`, `$MESHFORM_SECRETS_DIR` or `./.meshform`. */
  public static open(options: SecretStoreOptions = {}): SecretStore {
    return new SecretStore(options);
  }

  /** The mesh's secrets live only in the local store directory (`.meshform`). */
  public static local(): SecretStoreBackend {
    return new LocalStoreBackend();
  }

  /**
   * The mesh's shared secrets (everything but the root keys) in AWS Secrets Manager, one secret per mesh, so
   * that a pipeline can plan and deploy with them; the root key stays on the machine that issues. Credentials
   * from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
   */
  public static awsSecretsManager(options: AwsSecretsManagerStoreOptions): SecretStoreBackend {
    return new AwsSecretsManagerStoreBackend(options);
  }

  /**
   * The mesh's shared secrets in a Terraform Cloud variable set or workspace: certificates and records in a
   * readable variable, keys and tokens in a sensitive one (only Terraform Cloud runs can read it). Token from
   * `TF_TOKEN_<host>` or `TFE_TOKEN`.
   */
  public static terraformCloud(options: TerraformCloudStoreOptions): SecretStoreBackend {
    return new TerraformCloudStoreBackend(options);
  }

  /** Absolute path of the store directory. */
  public readonly directory: string;
  private readonly lock: FileLock;
  private readonly connections = new Map<string, Connection>();

  private constructor(options: SecretStoreOptions) {
    this.directory = path.resolve(options.directory ?? process.env.MESHFORM_SECRETS_DIR ?? '.meshform');
    this.lock = new FileLock(path.join(this.directory, LOCK_FILE));
  }

  /**
   * Runs `write` holding the store's lock (waiting up to two minutes for another process's hold, saying so
   * on stderr). Taking the lock first repairs what interrupted writes left behind.
   */
  public withLock<T>(write: () => T): T {
    const outermost = !this.lock.held;
    if (outermost) fs.mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    try {
      this.lock.acquire(LOCK_WAIT_MS, (holder) =>
        process.stderr.write(`meshform: waiting for the secret store, locked by ${describeHolder(holder)}\n`),
      );
    } catch (e) {
      if (e instanceof LockBusyError)
        throw errors.storeLocked(e.file, describeHolder(e.holder), Math.round(LOCK_WAIT_MS / 1000));
      throw e;
    }
    try {
      // nothing else writes while the lock is held: whatever is half-written was left by a run that is gone
      if (outermost) this.repair();
      const result = write();
      // what this run wrote reaches the shared backends before the lock is released
      if (outermost) this.pushConnected();
      return result;
    } finally {
      // a write that failed is not sent: what it left in the working copy (complete files) goes with the next one
      this.lock.release();
    }
  }

  /**
   * Links a mesh's entry to its shared backend (none for the local store) and brings the working copy in
   * step: the backend's document replaces the shared files when it changed since the last run; what this
   * working copy changed and never sent is sent by the next write. When both changed, refused. A run that
   * may not write (`writable` false: a pipeline, which never issues) needs the backend to hold the mesh.
   */
  public connect(mesh: string, location: SecretStoreLocation | undefined, options: { writable: boolean }): void {
    const backend = remoteBackend(location, mesh);
    if (!backend) {
      this.connections.delete(mesh);
      return;
    }
    const dir = this.meshDirectory(mesh);
    this.withLock(() => {
      const stateFile = path.join(dir, REMOTE_STATE);
      const saved = readJsonFile<RemoteState>(stateFile, RESTORE_FIX);
      const base = saved?.backend === backend.description ? saved : undefined;
      const remote = backend.read();
      const local = fs.existsSync(dir) ? collectShared(dir) : {};
      const localDigest = digestFiles(local);
      const localChanged = base ? localDigest !== base.localDigest : Object.keys(local).length > 0;
      const connection: Connection = {
        backend,
        writable: options.writable,
        version: base?.version,
        localDigest: base?.localDigest,
        readable: remote?.readable ?? 'all',
      };
      if (!remote) {
        if (!options.writable)
          throw new RemoteStoreError(
            `${backend.description} holds no secret store of mesh ${mesh}. Fix: run \`meshform synth\` (or \`meshform ca init\`) where the mesh's root key is kept, which issues the mesh's secrets into it; a pipeline never creates them`,
          );
        // a store kept only here so far: the next write sends all of it
        connection.version = undefined;
        connection.localDigest = undefined;
      } else if (!options.writable || remote.version !== base?.version || !localChanged) {
        if (options.writable && localChanged && (base || remote.digest !== digestFiles(local)))
          throw new RemoteStoreError(
            `mesh ${mesh}: both ${backend.description} and the local store (${dir}) changed since they were last in step; meshform does not merge them. ` +
              `Fix: keep the one that is right: to take the backend's, remove ${dir} except ca/roots (the root keys) and run again; to keep the local one, restore the backend's previous version`,
          );
        applyShared(dir, remote.files, remote.readable);
        connection.version = remote.version;
        connection.localDigest = digestFiles(collectShared(dir));
        writeFileAtomic(
          stateFile,
          `${JSON.stringify({ backend: backend.description, version: remote.version, localDigest: connection.localDigest } satisfies RemoteState)}\n`,
        );
      }
      this.connections.set(mesh, connection);
    });
  }

  /** The shared backend a mesh's entry is kept in, if any. */
  public backendOf(mesh: string): string | undefined {
    return this.connections.get(mesh)?.backend.description;
  }

  /**
   * True when this working copy lacks the mesh's keys and tokens because its backend never gives them back
   * (Terraform Cloud's sensitive variables: only its runs read them).
   */
  public keysUnreadable(mesh: string): boolean {
    const connection = this.connections.get(mesh);
    return connection?.readable === 'public' && !fs.existsSync(path.join(this.meshDirectory(mesh), FILES.gossipKey));
  }

  /** Sends each connected entry's changes to its backend (compare-and-swap on the version last seen). */
  private pushConnected(): void {
    for (const [mesh, connection] of this.connections) {
      const dir = this.meshDirectory(mesh);
      const files = collectShared(dir);
      const digest = digestFiles(files);
      if (digest === connection.localDigest || Object.keys(files).length === 0) continue;
      if (!connection.writable)
        throw new RemoteStoreError(
          `mesh ${mesh}: this run changed the store but may not write ${connection.backend.description} (it never issues: run \`meshform synth\` where the root key is)`,
        );
      const version = connection.backend.write(files, connection.version);
      connection.version = version;
      connection.localDigest = digest;
      writeFileAtomic(
        path.join(dir, REMOTE_STATE),
        `${JSON.stringify({ backend: connection.backend.description, version, localDigest: digest } satisfies RemoteState)}\n`,
      );
    }
  }

  /** Cleans what interrupted writes left: staged entries, temporary files, half-swapped CA directories. */
  private repair(): void {
    for (const entry of fs.readdirSync(this.directory, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(this.directory, entry.name);
      if (entry.name.startsWith('.') && entry.name.includes('.staging-')) {
        fs.rmSync(dir, { recursive: true, force: true });
        continue;
      }
      removeLeftoverFiles(dir);
      const ca = path.join(dir, 'ca');
      // a root staged by an earlier meshform's upgrade from format 1
      for (const name of fs.existsSync(ca) ? fs.readdirSync(ca) : [])
        if (name.startsWith('.') && name.includes('.staging-')) fs.rmSync(path.join(ca, name), { recursive: true });
      for (const group of [path.join(ca, 'roots'), path.join(ca, 'datacenters')]) {
        if (!fs.existsSync(group)) continue;
        const targets = new Set(
          fs.readdirSync(group).map((name) => name.replace(/^\.(.+)\.(?:staging|old)-\d+$/, '$1')),
        );
        for (const target of targets) repairDirectory(path.join(group, target));
      }
      // a root directory without a certificate was never a root: an earlier meshform stopped while writing it
      const roots = path.join(ca, 'roots');
      for (const id of fs.existsSync(roots) ? fs.readdirSync(roots) : []) {
        if (!id.startsWith('.') && !fs.existsSync(path.join(roots, id, 'certificate.pem')))
          fs.rmSync(path.join(roots, id), { recursive: true, force: true });
      }
    }
  }

  /** Directory of one mesh's entry. */
  public meshDirectory(mesh: string): string {
    // a mesh's name names its directory: never a path that leads out of the store (a tampered manifest)
    if (!isDatacenterName(mesh)) throw errors.invalidName(this.directory, 'mesh name', mesh, 'shop');
    return path.join(this.directory, mesh);
  }

  /** True when the mesh has an entry. */
  public has(mesh: string): boolean {
    return fs.existsSync(path.join(this.meshDirectory(mesh), FILES.index));
  }

  /** Reads a mesh's shared secrets; throws naming the file when the entry is missing or incomplete. */
  public load(mesh: string): MeshSecrets {
    const dir = this.meshDirectory(mesh);
    this.readIndex(mesh);
    if (this.keysUnreadable(mesh))
      throw new RemoteStoreError(
        `mesh ${mesh}: its keys and tokens are in a sensitive variable of ${this.backendOf(mesh)}, which only Terraform Cloud runs can read. ` +
          'Fix: plan and apply these stacks in Terraform Cloud runs (their workspaces get the variables from `meshform secrets push`), or run this where the root key is kept',
      );
    const read = (file: string): string => {
      try {
        return fs.readFileSync(path.join(dir, file), 'utf8').trim();
      } catch {
        throw errors.secretStoreCorrupt(dir, `${file} is missing`);
      }
    };
    const management = read(FILES.aclBootstrapToken);
    const secrets: MeshSecrets = {
      gossipKey: read(FILES.gossipKey),
      aclBootstrapToken: management,
      aclReplicationToken: replicationToken(management),
    };
    if (Buffer.from(secrets.gossipKey, 'base64').length !== 32) {
      throw errors.storeFileCorrupt(path.join(dir, FILES.gossipKey), 'is not 32 bytes of base64', RESTORE_FIX);
    }
    if (!UUID.test(secrets.aclBootstrapToken)) {
      throw errors.storeFileCorrupt(path.join(dir, FILES.aclBootstrapToken), 'does not hold a UUID', RESTORE_FIX);
    }
    return secrets;
  }

  /** The mesh's CA material; its writes hold the store's lock. */
  public ca(mesh: string): CaMaterial {
    return new CaMaterial(this.meshDirectory(mesh), mesh, (write) => this.withLock(write));
  }

  /** A JSON document the store keeps for a mesh (`file` relative to its entry), if any; refused when unreadable. */
  public readJson<T>(mesh: string, file: string): T | undefined {
    return readJsonFile<T>(path.join(this.meshDirectory(mesh), file), RESTORE_FIX);
  }

  /** Writes a JSON document of a mesh's entry completely or not at all, holding the store's lock. */
  public writeJson(mesh: string, file: string, value: unknown): void {
    this.withLock(() =>
      writeFileAtomic(path.join(this.meshDirectory(mesh), file), `${JSON.stringify(value, null, 2)}\n`),
    );
  }

  /** Removes a JSON document of a mesh's entry, holding the store's lock. */
  public removeJson(mesh: string, file: string): void {
    this.withLock(() => fs.rmSync(path.join(this.meshDirectory(mesh), file), { force: true }));
  }

  /**
   * The version of the secrets a datacenter's stacks hold: 1 at first, one more each time `values` differ
   * from the values of the version before (a rotated key, a renewed certificate). Terraform keeps the secrets
   * in write-only arguments, which it never reads back; this counter (a stack variable, no secret) is what
   * makes it send a changed secret again. Kept in the mesh's entry (`versions.json`).
   */
  public secretsVersion(mesh: string, datacenter: string, values: readonly string[]): number {
    const sha256 = createHash('sha256').update(JSON.stringify(values)).digest('hex');
    const current = () => this.readJson<SecretVersions>(mesh, FILES.versions) ?? {};
    const known = current()[datacenter];
    if (known?.sha256 === sha256) return known.version;
    return this.withLock(() => {
      const versions = current();
      const entry = versions[datacenter];
      if (entry?.sha256 === sha256) return entry.version; // another process recorded it while this one waited
      const version = (entry?.version ?? 0) + 1;
      this.writeJson(mesh, FILES.versions, { ...versions, [datacenter]: { version, sha256 } });
      return version;
    });
  }

  /** Printable facts about a mesh's entry. */
  public info(mesh: string): MeshSecretsInfo {
    const ca = this.ca(mesh);
    const backend = this.backendOf(mesh);
    return {
      directory: this.meshDirectory(mesh),
      ...(backend ? { backend } : {}),
      roots: ca.roots().map((id) => ({
        id,
        fingerprint: certificateFacts(ca.rootCertificate(id)!).fingerprint,
        unattended: ca.isUnattended(id),
      })),
    };
  }

  /** Returns the mesh's shared secrets, creating the entry first when the mesh has none. */
  public ensure(mesh: string): { readonly secrets: MeshSecrets; readonly created: boolean } {
    if (this.has(mesh)) return { secrets: this.load(mesh), created: false };
    const created = this.withLock(() => {
      if (this.has(mesh)) return false; // another process created it while this one waited
      this.create(mesh);
      return true;
    });
    return { secrets: this.load(mesh), created };
  }

  private readIndex(mesh: string): StoreIndex {
    const dir = this.meshDirectory(mesh);
    const file = path.join(dir, FILES.index);
    const index = readJsonFile<StoreIndex>(file, RESTORE_FIX);
    if (!index) throw errors.secretStoreCorrupt(dir, `${FILES.index} is missing`);
    if (index.mesh !== mesh)
      throw errors.storeFileCorrupt(file, `is for mesh "${index.mesh}", not "${mesh}"`, RESTORE_FIX);
    if (index.format === 1) return this.withLock(() => this.upgradeFromFormat1(mesh, index.serverCaFingerprint));
    if (index.format !== FORMAT) throw errors.storeFileCorrupt(file, `has unknown format ${index.format}`, RESTORE_FIX);
    return index;
  }

  /**
   * Format 1 kept one shared server CA: it becomes root `root-1` (its key encrypted, unattended) after
   * checking it against the recorded fingerprint and its key. The new root is written completely before the
   * old files are removed, so an interrupted upgrade is repeated on the next use.
   */
  private upgradeFromFormat1(mesh: string, recordedFingerprint: string | undefined): StoreIndex {
    const dir = this.meshDirectory(mesh);
    const current = readJsonFile<StoreIndex>(path.join(dir, FILES.index), RESTORE_FIX);
    if (current?.format === FORMAT) return current; // another process upgraded it while this one waited
    const certificateFile = path.join(dir, 'server-ca.pem');
    const keyFile = path.join(dir, 'server-ca-key.pem');
    const rootDir = path.join(dir, 'ca', 'roots', 'root-1');
    if (fs.existsSync(certificateFile) && fs.existsSync(keyFile)) {
      const certificate = fs.readFileSync(certificateFile, 'utf8');
      const key = readPrivateKey(fs.readFileSync(keyFile, 'utf8'));
      if (certificateFacts(certificate).fingerprint !== recordedFingerprint) {
        throw errors.secretStoreCorrupt(dir, `server-ca.pem does not match the fingerprint in ${FILES.index}`);
      }
      if (!keyMatchesCertificate(certificate, key))
        throw errors.secretStoreCorrupt(dir, 'server-ca-key.pem does not match server-ca.pem');
      fs.mkdirSync(path.dirname(rootDir), { recursive: true, mode: 0o700 });
      replaceDirectory(rootDir, (staging) => {
        const passphrase = randomBytes(24).toString('base64url');
        fs.writeFileSync(path.join(staging, 'key.pem'), privateKeyPem(key, passphrase), { mode: 0o600 });
        fs.writeFileSync(path.join(staging, 'passphrase'), `${passphrase}\n`, { mode: 0o600 });
        fs.writeFileSync(path.join(staging, 'certificate.pem'), certificate, { mode: 0o644 });
      });
      fs.rmSync(keyFile);
      fs.rmSync(certificateFile);
    } else if (!fs.existsSync(path.join(rootDir, 'certificate.pem'))) {
      throw errors.secretStoreCorrupt(dir, 'server-ca.pem or server-ca-key.pem is missing (format 1)');
    }
    const index: StoreIndex = { format: FORMAT, mesh };
    writeFileAtomic(path.join(dir, FILES.index), `${JSON.stringify(index, null, 2)}\n`);
    return index;
  }

  private create(mesh: string): void {
    const ignore = path.join(this.directory, '.gitignore');
    if (!fs.existsSync(ignore)) fs.writeFileSync(ignore, '# meshform secret store: never commit\n*\n', { mode: 0o600 });
    const staging = fs.mkdtempSync(path.join(this.directory, `.${mesh}.staging-`));
    try {
      fs.chmodSync(staging, 0o700);
      const write = (file: string, content: string) =>
        fs.writeFileSync(path.join(staging, file), content, { mode: 0o600 });
      write(FILES.gossipKey, `${createGossipKey()}\n`);
      write(FILES.aclBootstrapToken, `${randomUUID()}\n`);
      write(FILES.index, `${JSON.stringify({ format: FORMAT, mesh } satisfies StoreIndex, null, 2)}\n`);
      fs.renameSync(staging, this.meshDirectory(mesh));
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  }
}
