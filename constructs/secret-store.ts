import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from './errors';
import { replicationToken } from './private/acl';
import { CaMaterial } from './private/ca-material';
import { describeHolder, FileLock, LockBusyError } from './private/file-lock';
import { createGossipKey } from './private/pki';
import { isDatacenterName } from './private/validation';
import {
  readJsonFile,
  removeLeftoverFiles,
  repairDirectory,
  replaceDirectory,
  writeFileAtomic,
} from './private/store-files';
import { certificateFacts, keyMatchesCertificate, privateKeyPem, readPrivateKey } from './private/x509';

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
 */
export class SecretStore {
  /** Opens (without creating) the store at `options.directory`, `$MESHFORM_SECRETS_DIR` or `./.meshform`. */
  public static open(options: SecretStoreOptions = {}): SecretStore {
    return new SecretStore(options);
  }

  /** Absolute path of the store directory. */
  public readonly directory: string;
  private readonly lock: FileLock;

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
      return write();
    } finally {
      this.lock.release();
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
    return {
      directory: this.meshDirectory(mesh),
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
