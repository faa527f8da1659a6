import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from './errors';
import { replicationToken } from './private/acl';
import { CaMaterial } from './private/ca-material';
import { createGossipKey } from './private/pki';
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
const FILES = {
  index: 'store.json',
  gossipKey: 'gossip.key',
  aclBootstrapToken: 'acl-bootstrap.token',
} as const;

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
 * Created on first use. Files are written with mode 0600 in 0700 directories; a new entry is written to a
 * temporary directory and renamed into place, so it is either complete or absent. Synthesis never reads it:
 * secrets reach Terraform only as sensitive variables (`meshform secrets env`). A store of format 1 (one
 * shared server CA) is upgraded in place: its CA becomes root `root-1`.
 */
export class SecretStore {
  /** Opens (without creating) the store at `options.directory`, `$MESHFORM_SECRETS_DIR` or `./.meshform`. */
  public static open(options: SecretStoreOptions = {}): SecretStore {
    return new SecretStore(options);
  }

  /** Absolute path of the store directory. */
  public readonly directory: string;

  private constructor(options: SecretStoreOptions) {
    this.directory = path.resolve(options.directory ?? process.env.MESHFORM_SECRETS_DIR ?? '.meshform');
  }

  /** Directory of one mesh's entry. */
  public meshDirectory(mesh: string): string {
    return path.join(this.directory, mesh);
  }

  /** True when the mesh has an entry. */
  public has(mesh: string): boolean {
    return fs.existsSync(path.join(this.meshDirectory(mesh), FILES.index));
  }

  /** Reads a mesh's shared secrets; throws when the entry is missing or incomplete. */
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
      throw errors.secretStoreCorrupt(dir, `${FILES.gossipKey} is not 32 bytes of base64`);
    }
    return secrets;
  }

  /** The mesh's CA material. */
  public ca(mesh: string): CaMaterial {
    return new CaMaterial(this.meshDirectory(mesh), mesh);
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
    this.create(mesh);
    return { secrets: this.load(mesh), created: true };
  }

  private readIndex(mesh: string): StoreIndex {
    const dir = this.meshDirectory(mesh);
    const file = path.join(dir, FILES.index);
    let index: StoreIndex;
    try {
      index = JSON.parse(fs.readFileSync(file, 'utf8')) as StoreIndex;
    } catch {
      throw errors.secretStoreCorrupt(dir, `${FILES.index} is missing or not JSON`);
    }
    if (index.mesh !== mesh) throw errors.secretStoreCorrupt(dir, `${FILES.index} is for mesh "${index.mesh}"`);
    if (index.format === 1) return this.upgradeFromFormat1(mesh, index.serverCaFingerprint);
    if (index.format !== FORMAT)
      throw errors.secretStoreCorrupt(dir, `${FILES.index} has unknown format ${index.format}`);
    return index;
  }

  /**
   * Format 1 kept one shared server CA: it becomes root `root-1` (its key encrypted, unattended) after
   * checking it against the recorded fingerprint and its key. The new root is written completely before the
   * old files are removed, so an interrupted upgrade is repeated on the next use.
   */
  private upgradeFromFormat1(mesh: string, recordedFingerprint: string | undefined): StoreIndex {
    const dir = this.meshDirectory(mesh);
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
      const staging = path.join(dir, 'ca', `.root-1.staging-${process.pid}`);
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
      const passphrase = randomBytes(24).toString('base64url');
      fs.writeFileSync(path.join(staging, 'key.pem'), privateKeyPem(key, passphrase), { mode: 0o600 });
      fs.writeFileSync(path.join(staging, 'passphrase'), `${passphrase}\n`, { mode: 0o600 });
      fs.writeFileSync(path.join(staging, 'certificate.pem'), certificate, { mode: 0o644 });
      fs.mkdirSync(path.dirname(rootDir), { recursive: true, mode: 0o700 });
      fs.rmSync(rootDir, { recursive: true, force: true });
      fs.renameSync(staging, rootDir);
      fs.rmSync(keyFile);
      fs.rmSync(certificateFile);
    } else if (!fs.existsSync(path.join(rootDir, 'certificate.pem'))) {
      throw errors.secretStoreCorrupt(dir, 'server-ca.pem or server-ca-key.pem is missing (format 1)');
    }
    const index: StoreIndex = { format: FORMAT, mesh };
    const tmp = path.join(dir, `${FILES.index}.tmp-${process.pid}`);
    fs.writeFileSync(tmp, `${JSON.stringify(index, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, path.join(dir, FILES.index));
    return index;
  }

  private create(mesh: string): void {
    fs.mkdirSync(this.directory, { recursive: true, mode: 0o700 });
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
      if (this.has(mesh)) return; // another process created it first
      throw e;
    }
  }
}
