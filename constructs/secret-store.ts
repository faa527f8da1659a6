import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from './errors';
import { certificateFingerprint, createGossipKey, createSelfSignedCa } from './private/pki';

/** The secrets every datacenter of one mesh shares. */
export interface MeshSecrets {
  /** PEM certificate of the CA that signs Consul's server and client TLS certificates. */
  readonly serverCaCertificatePem: string;
  /** PEM private key of that CA. */
  readonly serverCaPrivateKeyPem: string;
  /** Consul gossip encryption key (base64 of 32 bytes). */
  readonly gossipKey: string;
  /** ACL token: the primary's initial management token and every secondary's replication token. */
  readonly aclBootstrapToken: string;
}

/** Facts about a mesh's stored secrets that are safe to print. */
export interface MeshSecretsInfo {
  /** Directory holding this mesh's secrets. */
  readonly directory: string;
  /** SHA-256 fingerprint of the server CA certificate. */
  readonly serverCaFingerprint: string;
}

/** Options of a secret store. */
export interface SecretStoreOptions {
  /**
   * Directory of the store.
   * @default - $MESHFORM_SECRETS_DIR if set, else ".meshform" in the current directory
   */
  readonly directory?: string;
  /**
   * Days the server CA created for a new mesh is valid.
   * @default 1825
   */
  readonly serverCaValidityDays?: number;
  /**
   * RSA key size of the server CA created for a new mesh.
   * @default 4096
   */
  readonly serverCaKeyBits?: number;
}

/** The file names of one mesh's entry, and the store format version. */
const FORMAT = 1;
const FILES = {
  index: 'store.json',
  serverCaCertificate: 'server-ca.pem',
  serverCaPrivateKey: 'server-ca-key.pem',
  gossipKey: 'gossip.key',
  aclBootstrapToken: 'acl-bootstrap.token',
} as const;

interface StoreIndex {
  readonly format: number;
  readonly mesh: string;
  readonly serverCaFingerprint: string;
}

/**
 * meshform's local, git-ignored secret store: one directory per mesh holding the server TLS CA, the gossip
 * key and the ACL bootstrap token that every datacenter of the mesh shares.
 *
 * The store is created on first use. Files are written with mode 0600 in a 0700 directory, and an entry is
 * written to a temporary directory and renamed into place, so a store is either complete or absent.
 * Synthesis never reads private material from it: secrets reach Terraform only as sensitive variables
 * (see `meshform secrets env`).
 */
export class SecretStore {
  /** Opens (without creating) the store at `options.directory`, `$MESHFORM_SECRETS_DIR` or `./.meshform`. */
  public static open(options: SecretStoreOptions = {}): SecretStore {
    return new SecretStore(options);
  }

  /** Absolute path of the store directory. */
  public readonly directory: string;
  private readonly caValidityDays: number;
  private readonly caKeyBits: number;

  private constructor(options: SecretStoreOptions) {
    this.directory = path.resolve(options.directory ?? process.env.MESHFORM_SECRETS_DIR ?? '.meshform');
    this.caValidityDays = options.serverCaValidityDays ?? 1825;
    this.caKeyBits = options.serverCaKeyBits ?? 4096;
  }

  /** Directory of one mesh's entry. */
  public meshDirectory(mesh: string): string {
    return path.join(this.directory, mesh);
  }

  /** True when the mesh has an entry. */
  public has(mesh: string): boolean {
    return fs.existsSync(path.join(this.meshDirectory(mesh), FILES.index));
  }

  /** Reads a mesh's secrets; throws when the entry is missing or incomplete. */
  public load(mesh: string): MeshSecrets {
    const dir = this.meshDirectory(mesh);
    const read = (file: string): string => {
      try {
        return fs.readFileSync(path.join(dir, file), 'utf8');
      } catch {
        throw errors.secretStoreCorrupt(dir, `${file} is missing`);
      }
    };
    const index = this.readIndex(mesh);
    const secrets: MeshSecrets = {
      serverCaCertificatePem: read(FILES.serverCaCertificate),
      serverCaPrivateKeyPem: read(FILES.serverCaPrivateKey),
      gossipKey: read(FILES.gossipKey).trim(),
      aclBootstrapToken: read(FILES.aclBootstrapToken).trim(),
    };
    if (certificateFingerprint(secrets.serverCaCertificatePem) !== index.serverCaFingerprint) {
      throw errors.secretStoreCorrupt(
        dir,
        `${FILES.serverCaCertificate} does not match the fingerprint in ${FILES.index}`,
      );
    }
    if (Buffer.from(secrets.gossipKey, 'base64').length !== 32) {
      throw errors.secretStoreCorrupt(dir, `${FILES.gossipKey} is not 32 bytes of base64`);
    }
    return secrets;
  }

  /** Printable facts about a mesh's entry. */
  public info(mesh: string): MeshSecretsInfo {
    return { directory: this.meshDirectory(mesh), serverCaFingerprint: this.readIndex(mesh).serverCaFingerprint };
  }

  /** Returns the mesh's secrets, creating them first when the mesh has no entry yet. */
  public ensure(mesh: string): { readonly secrets: MeshSecrets; readonly created: boolean } {
    if (this.has(mesh)) {
      return { secrets: this.load(mesh), created: false };
    }
    this.create(mesh);
    return { secrets: this.load(mesh), created: true };
  }

  private readIndex(mesh: string): StoreIndex {
    const file = path.join(this.meshDirectory(mesh), FILES.index);
    let index: StoreIndex;
    try {
      index = JSON.parse(fs.readFileSync(file, 'utf8')) as StoreIndex;
    } catch {
      throw errors.secretStoreCorrupt(this.meshDirectory(mesh), `${FILES.index} is missing or not JSON`);
    }
    if (index.format !== FORMAT || index.mesh !== mesh) {
      throw errors.secretStoreCorrupt(
        this.meshDirectory(mesh),
        `${FILES.index} is for format ${index.format} / mesh "${index.mesh}"`,
      );
    }
    return index;
  }

  private create(mesh: string): void {
    fs.mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    const ignore = path.join(this.directory, '.gitignore');
    if (!fs.existsSync(ignore)) {
      fs.writeFileSync(ignore, '# meshform secret store: never commit\n*\n', { mode: 0o600 });
    }
    const ca = createSelfSignedCa({
      commonName: `${mesh} Consul Agent CA`,
      organization: 'meshform',
      validityDays: this.caValidityDays,
      keyBits: this.caKeyBits,
    });
    const index: StoreIndex = { format: FORMAT, mesh, serverCaFingerprint: certificateFingerprint(ca.certificatePem) };
    const staging = fs.mkdtempSync(path.join(this.directory, `.${mesh}.staging-`));
    try {
      fs.chmodSync(staging, 0o700);
      const write = (file: string, content: string) =>
        fs.writeFileSync(path.join(staging, file), content, { mode: 0o600 });
      write(FILES.serverCaCertificate, ca.certificatePem);
      write(FILES.serverCaPrivateKey, ca.privateKeyPem);
      write(FILES.gossipKey, `${createGossipKey()}\n`);
      write(FILES.aclBootstrapToken, `${randomUUID()}\n`);
      write(FILES.index, `${JSON.stringify(index, null, 2)}\n`);
      fs.renameSync(staging, this.meshDirectory(mesh));
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      // Another process may have created the entry first: that one wins.
      if (this.has(mesh)) return;
      throw e;
    }
  }
}
