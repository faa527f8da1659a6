import { randomBytes, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CaPlan } from '../certificate-authority';
import { caErrors, CaMaterialError, errors } from '../errors';
import { copyFiles, hasLeftovers, repairDirectory, replaceDirectory, writeFileAtomic } from './store-files';
import {
  certificateFacts,
  CertificateFacts,
  generateKey,
  isSignedBy,
  issueCertificate,
  KeyAlgorithm,
  keyMatchesCertificate,
  parseCertificateRequest,
  privateKeyPem,
  readPrivateKey,
  splitPem,
} from './x509';

/** The server certificate a datacenter needs (from the topology). */
export interface ServerCertificateRequest {
  readonly datacenter: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /**
   * The datacenter's client agents (VMs) serve their local HTTPS API with a certificate of the mesh
   * (`CLIENT_API_NAMES`), issued with the server certificate.
   */
  readonly clientApi?: boolean;
}

/**
 * The names of the certificate a VM client agent's local HTTPS API serves: what its local callers dial
 * (`consul connect envoy -http-addr https://127.0.0.1:8501`, meshform-node). Loopback names only, and for
 * server authentication only, so the certificate (on every client host) can neither pass for a server
 * (`server.<dc>.<domain>`) nor serve as a client certificate towards the servers.
 */
export const CLIENT_API_NAMES = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] } as const;

/** Supplies a root key's passphrase when meshform needs it (environment, prompt). */
export type PassphraseProvider = (rootId: string) => string | undefined;

/** The environment variable holding one root's passphrase: `MESHFORM_CA_PASSPHRASE_ROOT_2` for `root-2`. */
export function passphraseVariable(rootId: string): string {
  return `MESHFORM_CA_PASSPHRASE_${rootId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** A root's passphrase from its own variable, else MESHFORM_CA_PASSPHRASE. */
export const passphraseFromEnvironment: PassphraseProvider = (rootId) =>
  process.env[passphraseVariable(rootId)] || process.env.MESHFORM_CA_PASSPHRASE || undefined;

const DAY = 86_400_000;
/** Certificates start a minute in the past, so a peer whose clock is slightly behind accepts them. */
const BACKDATE = 60_000;

/** The fix for a datacenter's certificate file meshform cannot read: it is issued again. */
function reissueFix(dc: string): string {
  return `remove it with its directory (${path.join('ca', 'datacenters', dc)}) and run \`meshform synth\` or \`meshform ca rotate --intermediate ${dc}\`: meshform issues the datacenter's intermediate and server certificate again`;
}

/** The fix for a root file meshform cannot read. */
const ROOT_FIX =
  'restore the root directory (certificate.pem, key.pem, and passphrase if it was unattended) from your offline backup; if no datacenter was ever deployed with this root, delete its directory and run `meshform synth`';

/** A certificate file's text, checked to be one: undefined when absent; refused naming the file when unreadable. */
function readCertificate(file: string, fix: string): string | undefined {
  const pem = readText(file, fix);
  if (pem === undefined) return undefined;
  try {
    for (const one of splitPem(pem)) new X509Certificate(one);
    if (splitPem(pem).length === 0) throw new Error('no PEM certificate in it');
  } catch (e) {
    throw errors.storeFileCorrupt(file, `does not hold a readable certificate (${(e as Error).message})`, fix);
  }
  return pem;
}

/** An unencrypted key file's text, checked to be a key. */
function readKey(file: string, fix: string): string | undefined {
  const pem = readText(file, fix);
  if (pem === undefined) return undefined;
  try {
    readPrivateKey(pem);
  } catch (e) {
    throw errors.storeFileCorrupt(file, `does not hold a readable private key (${(e as Error).message})`, fix);
  }
  return pem;
}

function readText(file: string, fix: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw errors.storeFileCorrupt(file, `cannot be read (${(e as Error).message})`, fix);
  }
}

/** Runs a write of the store holding its lock. */
export type StoreLock = <T>(write: () => T) => T;

/**
 * One mesh's CA material in the secret store:
 *
 *     ca/roots/<id>/certificate.pem      self-signed root
 *     ca/roots/<id>/key.pem              its key, PKCS#8 encrypted with the root's passphrase
 *     ca/roots/<id>/passphrase           only for a root created unattended (move it offline: `ca protect`)
 *     ca/roots/<id>/cross-signed.pem     the root's key and subject, signed by the previous root (rotation)
 *     ca/datacenters/<dc>/intermediate.pem, intermediate-key.pem
 *     ca/datacenters/<dc>/server.pem     server certificate + intermediate (+ cross-signed root) chain
 *     ca/datacenters/<dc>/server-key.pem
 *
 * Every write holds the store's lock. A root, and a datacenter's certificates and keys, are each written as
 * one directory swapped into place (a key never sits beside another run's certificate); a single file is
 * written to a temporary name and renamed. A file that is not what it should be is refused, naming it.
 */
export class CaMaterial {
  private readonly root: string;

  /**
   * @param mesh the mesh's name, used in certificate names and errors
   * @param lock runs each write holding the store's lock (the store passes its own)
   */
  constructor(
    meshDirectory: string,
    public readonly mesh: string,
    private readonly lock: StoreLock = (write) => write(),
  ) {
    this.root = path.join(meshDirectory, 'ca');
  }

  private rootDir(id: string): string {
    // a root id names a directory of the store: never a path that leads out of it
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) throw errors.invalidRootId(this.rootSubject(id), 'root id', id);
    return path.join(this.root, 'roots', id);
  }

  private dcDir(dc: string): string {
    return path.join(this.root, 'datacenters', dc);
  }

  /**
   * The directory a read looks in: when another run is swapping it (or one was interrupted doing so), waits
   * for the store's lock and finishes or undoes that write first.
   */
  private settled(dir: string): string {
    if (!fs.existsSync(dir) && hasLeftovers(dir)) this.lock(() => repairDirectory(dir));
    return dir;
  }

  /** How errors name a root. */
  public rootSubject(id: string): string {
    return `${this.mesh} root ${id}`;
  }

  /** Ids of the roots in the store. */
  public roots(): string[] {
    const dir = path.join(this.root, 'roots');
    if (!fs.existsSync(dir)) return [];
    // a root being swapped (or left half-swapped): the store's lock waits for it, or repairs it
    if (fs.readdirSync(dir).some((name) => name.startsWith('.'))) this.lock(() => undefined);
    return fs
      .readdirSync(dir)
      .filter((id) => !id.startsWith('.') && fs.existsSync(path.join(dir, id, 'certificate.pem')))
      .sort();
  }

  public rootCertificate(id: string): string | undefined {
    return readCertificate(path.join(this.settled(this.rootDir(id)), 'certificate.pem'), ROOT_FIX);
  }

  /** True when the root's passphrase lies beside its key (created unattended). */
  public isUnattended(id: string): boolean {
    return fs.existsSync(path.join(this.settled(this.rootDir(id)), 'passphrase'));
  }

  /** Root `id` cross-signed by the root it replaced, if any. */
  public crossCertificate(id: string): string | undefined {
    return readCertificate(
      path.join(this.settled(this.rootDir(id)), 'cross-signed.pem'),
      "remove the file and run `meshform synth`: meshform cross-signs the root again (it needs the previous root's passphrase)",
    );
  }

  public intermediate(dc: string): { certificatePem: string; keyPem: string } | undefined {
    const dir = this.settled(this.dcDir(dc));
    const cert = readCertificate(path.join(dir, 'intermediate.pem'), reissueFix(dc));
    const key = readKey(path.join(dir, 'intermediate-key.pem'), reissueFix(dc));
    return cert && key ? { certificatePem: cert, keyPem: key } : undefined;
  }

  public server(dc: string): { chainPem: string; keyPem: string } | undefined {
    const dir = this.settled(this.dcDir(dc));
    const chain = readCertificate(path.join(dir, 'server.pem'), reissueFix(dc));
    const key = readKey(path.join(dir, 'server-key.pem'), reissueFix(dc));
    return chain && key ? { chainPem: chain, keyPem: key } : undefined;
  }

  /** The certificate (leaf + intermediate chain) and key of a datacenter's client agents' local HTTPS API. */
  public clientApi(dc: string): { chainPem: string; keyPem: string } | undefined {
    const dir = this.settled(this.dcDir(dc));
    const chain = readCertificate(path.join(dir, 'client-api.pem'), reissueFix(dc));
    const key = readKey(path.join(dir, 'client-api-key.pem'), reissueFix(dc));
    return chain && key ? { chainPem: chain, keyPem: key } : undefined;
  }

  /**
   * Creates a self-signed root. Its key is encrypted with `passphrase`; without one, a random passphrase is
   * generated and kept beside the key (unattended), to be moved offline with `protect`.
   */
  public createRoot(
    id: string,
    options: { keyAlgorithm: KeyAlgorithm; validityDays: number; passphrase?: string; now?: Date },
  ): void {
    this.lock(() => {
      if (this.rootCertificate(id)) throw caErrors.rootExists(this.rootSubject(id));
      const now = options.now ?? new Date();
      const key = generateKey(options.keyAlgorithm);
      const certificate = issueCertificate({
        commonName: `${this.mesh} mesh root ${id}`,
        organization: 'meshform',
        publicKey: key.publicKey,
        selfSigningKey: key.privateKey,
        notBefore: new Date(now.getTime() - BACKDATE),
        notAfter: new Date(now.getTime() + options.validityDays * DAY),
        ca: {},
      });
      const passphrase = options.passphrase ?? randomBytes(24).toString('base64url');
      replaceDirectory(this.rootDir(id), (dir) => {
        put(dir, 'key.pem', privateKeyPem(key.privateKey, passphrase));
        if (options.passphrase === undefined) put(dir, 'passphrase', `${passphrase}\n`);
        put(dir, 'certificate.pem', certificate, 0o644);
      });
    });
  }

  /** Removes a root that was never used (a rotation that failed half-way). */
  public removeRoot(id: string): void {
    this.lock(() => fs.rmSync(this.rootDir(id), { recursive: true, force: true }));
  }

  /** The root's private key, decrypted with the stored or provided passphrase, checked against its certificate. */
  public rootKey(id: string, passphrases: PassphraseProvider) {
    const subject = this.rootSubject(id);
    const dir = this.settled(this.rootDir(id));
    const keyFile = path.join(dir, 'key.pem');
    const keyPem = readText(keyFile, ROOT_FIX);
    if (!keyPem) throw caErrors.rootKeyMissing(subject, keyFile);
    const stored = readText(path.join(dir, 'passphrase'), ROOT_FIX)?.trim();
    const passphrase = stored ?? passphrases(id);
    if (passphrase === undefined) throw caErrors.passphraseNeeded(subject, passphraseVariable(id));
    let key;
    try {
      key = readPrivateKey(keyPem, passphrase);
    } catch {
      if (!/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(keyPem))
        throw errors.storeFileCorrupt(keyFile, 'does not hold an encrypted private key', ROOT_FIX);
      if (stored !== undefined)
        throw errors.storeFileCorrupt(keyFile, 'is not decrypted by the passphrase stored beside it', ROOT_FIX);
      throw caErrors.wrongPassphrase(subject, passphraseVariable(id));
    }
    if (!keyMatchesCertificate(this.rootCertificate(id)!, key)) {
      throw caErrors.keyMismatch(subject, `restore ${keyFile} and certificate.pem together from your offline backup`);
    }
    return key;
  }

  /** Re-encrypts a root key with a new passphrase and removes the stored one (one swap: never half done). */
  public protect(id: string, newPassphrase: string, passphrases: PassphraseProvider): void {
    this.lock(() => {
      const key = this.rootKey(id, passphrases);
      replaceDirectory(this.rootDir(id), (dir, previous) => {
        copyFiles(previous, dir, ['certificate.pem', 'cross-signed.pem']);
        put(dir, 'key.pem', privateKeyPem(key, newPassphrase));
      });
    });
  }

  /**
   * Brings an existing root (certificate and key, e.g. a CA made with `consul tls ca create` or your PKI)
   * into the store, after checking it is a usable root: a self-signed CA certificate, valid now and beyond
   * the rotation window, whose key matches. The key is stored encrypted with `passphrase`.
   */
  public importRoot(
    id: string,
    certificatePem: string,
    keyPem: string,
    options: { passphrase: string; keyPassphrase?: string; rotationWindowDays: number; now?: Date },
  ): void {
    const subject = this.rootSubject(id);
    const certificates = splitPem(certificatePem);
    if (certificates.length !== 1) throw caErrors.badCertificateFile(subject, certificates.length);
    const certificate = certificates[0]!;
    let key;
    try {
      key = readPrivateKey(keyPem, options.keyPassphrase);
    } catch {
      throw caErrors.unreadable(
        subject,
        'the key',
        'give an unencrypted PEM key, or its passphrase in MESHFORM_IMPORT_KEY_PASSPHRASE',
      );
    }
    const problems = rootProblems(
      subject,
      certificate,
      options.now ?? new Date(),
      options.rotationWindowDays,
      'import another root',
    );
    if (problems.length > 0) throw problems[0]!;
    if (!keyMatchesCertificate(certificate, key))
      throw caErrors.keyMismatch(subject, 'give the key that belongs to this certificate');
    this.lock(() => {
      if (this.rootCertificate(id)) throw caErrors.rootExists(subject);
      replaceDirectory(this.rootDir(id), (dir) => {
        put(dir, 'key.pem', privateKeyPem(key, options.passphrase));
        put(dir, 'certificate.pem', certificate, 0o644);
      });
    });
  }

  /** Signs root `id`'s key and subject with root `previous` (valid until the earlier of the two expiries). */
  public crossSign(id: string, previous: string, passphrases: PassphraseProvider, now = new Date()): void {
    this.lock(() => {
      const newRoot = this.rootCertificate(id)!;
      const oldRoot = this.rootCertificate(previous)!;
      const cross = issueCertificate({
        commonName: '',
        subjectFromPem: newRoot,
        publicKey: new X509Certificate(newRoot).publicKey,
        issuer: { certificatePem: oldRoot, privateKey: this.rootKey(previous, passphrases) },
        notBefore: new Date(now.getTime() - BACKDATE),
        notAfter: new Date(
          Math.min(certificateFacts(newRoot).notAfter.getTime(), certificateFacts(oldRoot).notAfter.getTime()),
        ),
        ca: {},
      });
      writeFileAtomic(path.join(this.rootDir(id), 'cross-signed.pem'), cross, 0o644);
    });
  }

  /**
   * Signs a certificate signing request as a CA under root `rootId` (e.g. Vault's service mesh root mount, so
   * that the service mesh CA chains to the offline root). Returns the certificate followed by the root.
   */
  public signRequest(
    requestPem: string,
    rootId: string,
    options: { validityDays: number; now?: Date },
    passphrases: PassphraseProvider,
  ): string {
    const subject = this.rootSubject(rootId);
    let request;
    try {
      request = parseCertificateRequest(requestPem);
    } catch (e) {
      throw caErrors.badRequest(subject, (e as Error).message);
    }
    const rootPem = this.rootCertificate(rootId);
    if (!rootPem) throw caErrors.rootMissing(subject, this.roots(), rootId);
    const now = options.now ?? new Date();
    const certificate = issueCertificate({
      commonName: '',
      subjectDer: request.subjectDer,
      publicKey: request.publicKey,
      issuer: { certificatePem: rootPem, privateKey: this.rootKey(rootId, passphrases) },
      notBefore: new Date(now.getTime() - BACKDATE),
      notAfter: new Date(
        Math.min(now.getTime() + options.validityDays * DAY, certificateFacts(rootPem).notAfter.getTime()),
      ),
      ca: {},
    });
    return `${certificate}${rootPem}`;
  }

  /**
   * Issues a datacenter's intermediate under root `rootId` (path length 0: it issues leaves only). The old
   * server certificate belongs to the old intermediate: it goes in the same swap, so no mismatched pair remains.
   */
  public issueIntermediate(
    dc: string,
    rootId: string,
    options: { keyAlgorithm: KeyAlgorithm; validityDays: number; now?: Date },
    passphrases: PassphraseProvider,
  ): void {
    this.lock(() => {
      const now = options.now ?? new Date();
      const rootPem = this.rootCertificate(rootId)!;
      const rootKey = this.rootKey(rootId, passphrases);
      const key = generateKey(options.keyAlgorithm);
      const certificate = issueCertificate({
        commonName: `${this.mesh} ${dc} intermediate (${rootId})`,
        organization: 'meshform',
        publicKey: key.publicKey,
        issuer: { certificatePem: rootPem, privateKey: rootKey },
        notBefore: new Date(now.getTime() - BACKDATE),
        notAfter: new Date(
          Math.min(now.getTime() + options.validityDays * DAY, certificateFacts(rootPem).notAfter.getTime()),
        ),
        ca: { pathLength: 0 },
      });
      replaceDirectory(this.dcDir(dc), (dir) => {
        put(dir, 'intermediate-key.pem', privateKeyPem(key.privateKey));
        put(dir, 'intermediate.pem', certificate, 0o644);
      });
    });
  }

  /** Issues a datacenter's server certificate from its intermediate; the chain carries the cross-signed root. */
  public issueServer(
    request: ServerCertificateRequest,
    options: { keyAlgorithm: KeyAlgorithm; validityDays: number; crossChain?: string; now?: Date },
  ): void {
    this.issueLeaf(request.datacenter, 'server', request, options);
  }

  /**
   * Issues the certificate of a datacenter's client agents' local HTTPS API from its intermediate
   * (`CLIENT_API_NAMES`, server authentication only); the chain carries the cross-signed root like the server's.
   */
  public issueClientApi(
    dc: string,
    options: { keyAlgorithm: KeyAlgorithm; validityDays: number; crossChain?: string; now?: Date },
  ): void {
    this.issueLeaf(dc, 'client-api', CLIENT_API_NAMES, options, ['serverAuth']);
  }

  /** A leaf from `dc`'s intermediate, written as `<stem>.pem` (leaf, intermediate, cross-signed root) and `<stem>-key.pem`. */
  private issueLeaf(
    dc: string,
    stem: 'server' | 'client-api',
    names: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] },
    options: { keyAlgorithm: KeyAlgorithm; validityDays: number; crossChain?: string; now?: Date },
    extendedKeyUsage?: readonly ('serverAuth' | 'clientAuth')[],
  ): void {
    this.lock(() => {
      const now = options.now ?? new Date();
      const intermediate = this.intermediate(dc)!;
      const key = generateKey(options.keyAlgorithm);
      const leaf = issueCertificate({
        commonName: names.dnsNames[0]!,
        publicKey: key.publicKey,
        issuer: { certificatePem: intermediate.certificatePem, privateKey: readPrivateKey(intermediate.keyPem) },
        notBefore: new Date(now.getTime() - BACKDATE),
        notAfter: new Date(
          Math.min(
            now.getTime() + options.validityDays * DAY,
            certificateFacts(intermediate.certificatePem).notAfter.getTime(),
          ),
        ),
        dnsNames: names.dnsNames,
        ipAddresses: names.ipAddresses,
        ...(extendedKeyUsage ? { extendedKeyUsage } : {}),
      });
      // the datacenter's files are replaced as one unit: the other certificates and keys stay as they are
      replaceDirectory(this.dcDir(dc), (dir, previous) => {
        copyFiles(
          previous,
          dir,
          DATACENTER_FILES.filter((name) => name !== `${stem}.pem` && name !== `${stem}-key.pem`),
        );
        put(dir, `${stem}-key.pem`, privateKeyPem(key.privateKey));
        put(dir, `${stem}.pem`, `${leaf}${intermediate.certificatePem}${options.crossChain ?? ''}`, 0o644);
      });
    });
  }

  /** Rewrites a datacenter's server chain (same certificate and key): leaf, intermediate, cross-signed root if any. */
  public rechainServer(dc: string, crossChain: string | undefined): void {
    this.lock(() => {
      const [leaf] = splitPem(this.server(dc)!.chainPem);
      writeFileAtomic(
        path.join(this.dcDir(dc), 'server.pem'),
        `${leaf}${this.intermediate(dc)!.certificatePem}${crossChain ?? ''}`,
        0o644,
      );
    });
  }
}

/** The files of a datacenter's directory: its intermediate, its server and client API certificates and keys. */
const DATACENTER_FILES = [
  'intermediate.pem',
  'intermediate-key.pem',
  'server.pem',
  'server-key.pem',
  'client-api.pem',
  'client-api-key.pem',
] as const;

/** Writes one file of a staged directory. */
function put(dir: string, name: string, content: string, mode = 0o600): void {
  fs.writeFileSync(path.join(dir, name), content, { mode });
}

/** An IP address as node:crypto prints it in a subjectAltName (IPv6: eight groups, no leading zeros). */
function sanIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

/**
 * The state of one certificate: `ok`; `due` (renewed by the next synth, or for a root: rotate soon; inside
 * the rotation window, missing a requested SAN, issued under a root being retired); `expired` (renewed by
 * the next synth, except a root); `invalid` (corrupt or foreign material meshform refuses to use: no CA
 * constraints, a key that does not match, not yet valid, another trust domain).
 */
export type CertificateState = 'ok' | 'due' | 'expired' | 'invalid';

/** One certificate as `meshform ca status` shows it. */
export interface CertificateStatus extends CertificateFacts {
  /** What it is: `root root-1`, `cross-signed root-2 by root-1`, `intermediate dc1`, `server dc1`. */
  readonly role: string;
  readonly daysLeft: number;
  readonly state: CertificateState;
  /** Why it is not `ok`. */
  readonly problems: readonly string[];
}

/** Everything wrong or due with a mesh's CA material, for the topology's plan and datacenters. */
export interface CaInspection {
  readonly certificates: CertificateStatus[];
  /** Problems a synth refuses to proceed with (issuing cannot fix them), each saying what to do. */
  readonly errors: CaMaterialError[];
}

function daysLeft(pem: string, now: Date): number {
  return Math.floor((certificateFacts(pem).notAfter.getTime() - now.getTime()) / DAY);
}

/** Valid now, but expiring within the window. */
function withinWindow(pem: string, now: Date, windowDays: number): boolean {
  const left = daysLeft(pem, now);
  return left >= 0 && left <= windowDays;
}

/** What makes a certificate unusable as a root (checked at import and at every synth). */
function rootProblems(subject: string, pem: string, now: Date, windowDays: number, fix: string): CaMaterialError[] {
  const facts = certificateFacts(pem);
  const problems: CaMaterialError[] = [];
  if (!facts.isCa) problems.push(caErrors.notCa(subject, fix));
  else if (!isSignedBy(pem, pem)) problems.push(caErrors.notSelfSigned(subject));
  if (facts.notBefore.getTime() > now.getTime()) problems.push(caErrors.notYetValid(subject, facts.notBefore, fix));
  if (facts.notAfter.getTime() <= now.getTime()) problems.push(caErrors.expiredRoot(subject, facts.notAfter));
  else if (daysLeft(pem, now) <= windowDays)
    problems.push(caErrors.rootInRotationWindow(subject, daysLeft(pem, now), facts.notAfter, windowDays));
  return problems;
}

function entry(
  role: string,
  pem: string,
  now: Date,
  invalid: readonly string[],
  due: readonly string[],
): CertificateStatus {
  const facts = certificateFacts(pem);
  const expired = facts.notAfter.getTime() <= now.getTime();
  const state: CertificateState = invalid.length > 0 ? 'invalid' : expired ? 'expired' : due.length > 0 ? 'due' : 'ok';
  const problems = [...invalid, ...(expired ? [`expired on ${facts.notAfter.toISOString()}`] : []), ...due];
  return { ...facts, role, daysLeft: daysLeft(pem, now), state, problems };
}

/** The problem text of an error (for the status table), without subject and fix. */
function problemOf(error: CaMaterialError): string {
  return error.message.replace(/^\[[^\]]*\] /, '').replace(/\. Fix: [\s\S]*$/, '');
}

/**
 * Checks a mesh's CA material against its plan: every trusted root (self-signed CA, valid, outside the
 * rotation window), the cross-signed root, and each datacenter's intermediate and server certificate (CA
 * constraints, key match, chain to the mesh's roots, validity, requested SANs).
 */
export function inspectCa(
  material: CaMaterial,
  plan: CaPlan,
  requests: readonly ServerCertificateRequest[],
  now = new Date(),
): CaInspection {
  const errors: CaMaterialError[] = [];
  const certificates: CertificateStatus[] = [];
  const mesh = material.mesh;
  for (const id of [plan.root, ...(plan.previousRoot ? [plan.previousRoot] : [])]) {
    const subject = material.rootSubject(id);
    const pem = material.rootCertificate(id);
    const retiring = id === plan.previousRoot;
    if (!pem) {
      errors.push(
        retiring ? caErrors.previousRootMissing(subject) : caErrors.rootMissing(subject, material.roots(), id),
      );
      continue;
    }
    // a root being retired is trusted only until the rotation ends: its own window does not matter
    const problems = rootProblems(
      subject,
      pem,
      now,
      retiring ? 0 : plan.rotationWindowDays,
      'replace it: `meshform ca rotate --root`, or import a valid root',
    );
    const due = problems.filter((p) => p.code === 'root-in-rotation-window');
    const invalid = problems.filter((p) => p.code !== 'root-in-rotation-window' && p.code !== 'root-expired');
    certificates.push(
      entry(`root ${id}${retiring ? ' (being retired)' : ''}`, pem, now, invalid.map(problemOf), due.map(problemOf)),
    );
    errors.push(...(retiring ? invalid : problems));
  }
  if (plan.previousRoot && plan.crossSign) {
    const cross = material.crossCertificate(plan.root);
    const oldRoot = material.rootCertificate(plan.previousRoot);
    const newRoot = material.rootCertificate(plan.root);
    if (cross && oldRoot && newRoot) {
      const subject = `${mesh} cross-signed ${plan.root}`;
      const spki = (pem: string) =>
        (new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
      const invalid: CaMaterialError[] = [];
      if (!isSignedBy(cross, oldRoot))
        invalid.push(caErrors.crossSignedInvalid(subject, `it is not signed by ${plan.previousRoot}`));
      if (certificateFacts(cross).subject !== certificateFacts(newRoot).subject || spki(cross) !== spki(newRoot)) {
        invalid.push(caErrors.crossSignedInvalid(subject, `it does not carry ${plan.root}'s subject and key`));
      }
      certificates.push(
        entry(`cross-signed ${plan.root} by ${plan.previousRoot}`, cross, now, invalid.map(problemOf), []),
      );
      errors.push(...invalid);
    }
  }
  const trusted = [plan.root, ...(plan.previousRoot ? [plan.previousRoot] : [])].flatMap((id) => {
    const pem = material.rootCertificate(id);
    return pem ? [[id, pem] as const] : [];
  });
  for (const request of requests) {
    const dc = request.datacenter;
    const renew = `issue a new one with \`meshform ca rotate --intermediate ${dc}\``;
    const intermediate = material.intermediate(dc);
    if (intermediate) {
      const subject = `${mesh} intermediate ${dc}`;
      const invalid: CaMaterialError[] = [];
      const due: string[] = [];
      const facts = certificateFacts(intermediate.certificatePem);
      if (!facts.isCa) invalid.push(caErrors.notCa(subject, renew));
      if (!keyMatchesCertificate(intermediate.certificatePem, readPrivateKey(intermediate.keyPem)))
        invalid.push(caErrors.keyMismatch(subject, renew));
      if (facts.notBefore.getTime() > now.getTime())
        invalid.push(caErrors.notYetValid(subject, facts.notBefore, renew));
      const issuer = trusted.find(([, pem]) => isSignedBy(intermediate.certificatePem, pem))?.[0];
      const storeRoot = material
        .roots()
        .find((id) => isSignedBy(intermediate.certificatePem, material.rootCertificate(id)!));
      if (issuer === undefined && storeRoot === undefined)
        invalid.push(caErrors.foreignTrustDomain(subject, facts.issuer, renew));
      else if (issuer === undefined) due.push(`issued by root ${storeRoot}, which the mesh no longer trusts`);
      else if (issuer !== plan.root) due.push(`issued by ${issuer}, being retired`);
      if (withinWindow(intermediate.certificatePem, now, plan.rotationWindowDays))
        due.push(`expires within the rotation window (${plan.rotationWindowDays} days)`);
      certificates.push(entry(`intermediate ${dc}`, intermediate.certificatePem, now, invalid.map(problemOf), due));
      errors.push(...invalid);
    }
    const leaves = [
      { role: `server ${dc}`, material: material.server(dc), names: request },
      ...(request.clientApi
        ? [{ role: `client-api ${dc}`, material: material.clientApi(dc), names: CLIENT_API_NAMES }]
        : []),
    ];
    for (const leaf of leaves) {
      if (!leaf.material || !intermediate) continue;
      const status = leafStatus(
        `${mesh} ${leaf.role}`,
        leaf.role,
        leaf.material,
        leaf.names,
        intermediate,
        dc,
        plan,
        now,
      );
      certificates.push(status.certificate);
      errors.push(...status.invalid);
    }
  }
  return { certificates, errors };
}

/**
 * The state of a datacenter's leaf certificate (server or client API): not a CA, its key, validity, issued by
 * the current intermediate, carrying the requested names, outside the rotation window.
 */
function leafStatus(
  subject: string,
  role: string,
  issued: { chainPem: string; keyPem: string },
  names: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] },
  intermediate: { certificatePem: string },
  dc: string,
  plan: CaPlan,
  now: Date,
): { certificate: CertificateStatus; invalid: CaMaterialError[] } {
  const renew = `issue a new one with \`meshform ca rotate --intermediate ${dc}\``;
  const [leaf] = splitPem(issued.chainPem) as [string];
  const invalid: CaMaterialError[] = [];
  const due: string[] = [];
  const facts = certificateFacts(leaf);
  if (facts.isCa) invalid.push(caErrors.leafIsCa(subject, renew));
  if (!keyMatchesCertificate(leaf, readPrivateKey(issued.keyPem))) invalid.push(caErrors.keyMismatch(subject, renew));
  if (facts.notBefore.getTime() > now.getTime()) invalid.push(caErrors.notYetValid(subject, facts.notBefore, renew));
  if (!isSignedBy(leaf, intermediate.certificatePem)) due.push(`is not issued by ${dc}'s current intermediate`);
  const present = new Set((facts.subjectAltName ?? '').toLowerCase().split(', '));
  const missing = [
    ...names.dnsNames.map((d) => `DNS:${d}`),
    ...names.ipAddresses.map((ip) => `IP Address:${sanIp(ip)}`),
  ].filter((san) => !present.has(san.toLowerCase()));
  if (missing.length > 0) due.push(`lacks ${missing.join(', ')}`);
  if (withinWindow(leaf, now, plan.rotationWindowDays))
    due.push(`expires within the rotation window (${plan.rotationWindowDays} days)`);
  return { certificate: entry(role, leaf, now, invalid.map(problemOf), due), invalid };
}

function throwAll(problems: readonly CaMaterialError[]): void {
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw caErrors.several(problems);
}

/** What reconciling did, for the CLI to report. */
export interface CaActions {
  readonly created: string[];
}

/**
 * Brings the store in line with the plan: creates the first root (unattended when no passphrase is given),
 * cross-signs a new root, and issues or renews every datacenter's intermediate and server certificate that
 * is missing, expired, due, issued under the previous root, or lacking a requested SAN. Refuses (changing
 * nothing) when material is invalid in a way issuing cannot fix.
 */
export function reconcileCa(
  material: CaMaterial,
  plan: CaPlan,
  requests: readonly ServerCertificateRequest[],
  passphrases: PassphraseProvider,
  now = new Date(),
  newRootPassphrase: PassphraseProvider = passphrases,
): CaActions {
  const created: string[] = [];
  if (!material.rootCertificate(plan.root) && material.roots().length === 0 && !plan.previousRoot) {
    const passphrase = newRootPassphrase(plan.root);
    material.createRoot(plan.root, {
      keyAlgorithm: plan.keyAlgorithm,
      validityDays: plan.rootValidityDays,
      ...(passphrase ? { passphrase } : {}),
      now,
    });
    created.push(`root ${plan.root}${passphrase ? '' : ' (unattended: its passphrase is stored beside it)'}`);
  }
  throwAll(inspectCa(material, plan, requests, now).errors);
  if (plan.previousRoot && plan.crossSign && !material.crossCertificate(plan.root)) {
    material.crossSign(plan.root, plan.previousRoot, passphrases, now);
    created.push(`cross-signed ${plan.root} by ${plan.previousRoot}`);
  }
  const inspection = inspectCa(material, plan, requests, now);
  throwAll(inspection.errors);
  const byRole = new Map(inspection.certificates.map((c) => [c.role, c]));
  const crossChain = plan.previousRoot && plan.crossSign ? material.crossCertificate(plan.root) : undefined;
  for (const request of requests) {
    const dc = request.datacenter;
    const intermediate = byRole.get(`intermediate ${dc}`);
    let reissued = false;
    if (!intermediate || intermediate.state !== 'ok') {
      material.issueIntermediate(
        dc,
        plan.root,
        { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.intermediateValidityDays, now },
        passphrases,
      );
      created.push(`intermediate ${dc} (${plan.root})${intermediate ? `: ${intermediate.problems.join('; ')}` : ''}`);
      reissued = true;
    }
    const server = byRole.get(`server ${dc}`);
    const chainCurrent =
      material.server(dc)?.chainPem.endsWith(`${material.intermediate(dc)!.certificatePem}${crossChain ?? ''}`) ??
      false;
    if (reissued || !server || server.state !== 'ok') {
      material.issueServer(request, {
        keyAlgorithm: plan.keyAlgorithm,
        validityDays: plan.serverCertificateValidityDays,
        ...(crossChain ? { crossChain } : {}),
        now,
      });
      created.push(
        `server certificate ${dc}${server && server.state !== 'ok' && !reissued ? `: ${server.problems.join('; ')}` : ''}`,
      );
    } else if (!chainCurrent) {
      material.rechainServer(dc, crossChain);
      created.push(
        `server chain ${dc}: ${crossChain ? `now carries ${plan.root} cross-signed by ${plan.previousRoot}` : 'cross-signed root removed'}`,
      );
    }
    const clientApi = byRole.get(`client-api ${dc}`);
    const clientChainCurrent =
      material.clientApi(dc)?.chainPem.endsWith(`${material.intermediate(dc)!.certificatePem}${crossChain ?? ''}`) ??
      false;
    if (request.clientApi && (reissued || !clientApi || clientApi.state !== 'ok' || !clientChainCurrent)) {
      material.issueClientApi(dc, {
        keyAlgorithm: plan.keyAlgorithm,
        validityDays: plan.serverCertificateValidityDays,
        ...(crossChain ? { crossChain } : {}),
        now,
      });
      created.push(`client API certificate ${dc}`);
    }
  }
  return { created };
}

/** The TLS material one datacenter's servers get: the trust bundle (roots), their chain and key. */
export function datacenterTls(
  material: CaMaterial,
  plan: CaPlan,
  dc: string,
): { caBundle: string; serverChain: string; serverKey: string; clientApi?: { chainPem: string; keyPem: string } } {
  const roots = [plan.root, ...(plan.previousRoot ? [plan.previousRoot] : [])].map(
    (id) => material.rootCertificate(id)!,
  );
  const server = material.server(dc);
  if (!server) throw caErrors.noServerCertificate(`${material.mesh} server ${dc}`);
  const clientApi = material.clientApi(dc);
  return {
    caBundle: roots.join(''),
    serverChain: server.chainPem,
    serverKey: server.keyPem,
    ...(clientApi ? { clientApi } : {}),
  };
}
