import { randomBytes, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CaPlan } from '../certificate-authority';
import {
  certificateFacts,
  CertificateFacts,
  generateKey,
  isSignedBy,
  issueCertificate,
  KeyAlgorithm,
  keyMatchesCertificate,
  privateKeyPem,
  readPrivateKey,
  splitPem,
} from './x509';

/** The server certificate a datacenter needs (from the topology). */
export interface ServerCertificateRequest {
  readonly datacenter: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

/** Thrown when CA material is missing, invalid, or needs a secret meshform does not have. */
export class CaError extends Error {
  constructor(message: string, public readonly fix: string) {
    super(`${message}. Fix: ${fix}`);
    this.name = 'CaError';
  }
}

/** Supplies a root key's passphrase when meshform needs it (environment, prompt). */
export type PassphraseProvider = (rootId: string) => string | undefined;

/** Reads the passphrase from MESHFORM_CA_PASSPHRASE. */
export const passphraseFromEnvironment: PassphraseProvider = () => process.env.MESHFORM_CA_PASSPHRASE;

const DAY = 86_400_000;

function write(file: string, content: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

function read(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

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
 */
export class CaMaterial {
  private readonly root: string;

  constructor(meshDirectory: string) {
    this.root = path.join(meshDirectory, 'ca');
  }

  private rootDir(id: string): string {
    return path.join(this.root, 'roots', id);
  }

  private dcDir(dc: string): string {
    return path.join(this.root, 'datacenters', dc);
  }

  /** Ids of the roots in the store. */
  public roots(): string[] {
    const dir = path.join(this.root, 'roots');
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((id) => fs.existsSync(path.join(dir, id, 'certificate.pem'))).sort() : [];
  }

  /** Datacenters with material. */
  public datacenters(): string[] {
    const dir = path.join(this.root, 'datacenters');
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  }

  public rootCertificate(id: string): string | undefined {
    return read(path.join(this.rootDir(id), 'certificate.pem'));
  }

  /** True when the root's passphrase lies beside its key (created unattended). */
  public isUnattended(id: string): boolean {
    return fs.existsSync(path.join(this.rootDir(id), 'passphrase'));
  }

  public crossCertificate(id: string): string | undefined {
    return read(path.join(this.rootDir(id), 'cross-signed.pem'));
  }

  public intermediate(dc: string): { certificatePem: string; keyPem: string } | undefined {
    const cert = read(path.join(this.dcDir(dc), 'intermediate.pem'));
    const key = read(path.join(this.dcDir(dc), 'intermediate-key.pem'));
    return cert && key ? { certificatePem: cert, keyPem: key } : undefined;
  }

  public server(dc: string): { chainPem: string; keyPem: string } | undefined {
    const chain = read(path.join(this.dcDir(dc), 'server.pem'));
    const key = read(path.join(this.dcDir(dc), 'server-key.pem'));
    return chain && key ? { chainPem: chain, keyPem: key } : undefined;
  }

  /**
   * Creates a self-signed root. Its key is encrypted with `passphrase`; without one, a random passphrase is
   * generated and kept beside the key (unattended), to be moved offline with `protect`.
   */
  public createRoot(id: string, options: { keyAlgorithm: KeyAlgorithm; validityDays: number; mesh: string; passphrase?: string; now?: Date }): void {
    if (this.rootCertificate(id)) throw new CaError(`root ${id} already exists`, 'choose another id');
    const now = options.now ?? new Date();
    const key = generateKey(options.keyAlgorithm);
    const certificate = issueCertificate({
      commonName: `${options.mesh} mesh root ${id}`,
      organization: 'meshform',
      publicKey: key.publicKey,
      selfSigningKey: key.privateKey,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + options.validityDays * DAY),
      ca: {},
    });
    const passphrase = options.passphrase ?? randomBytes(24).toString('base64url');
    const dir = this.rootDir(id);
    write(path.join(dir, 'key.pem'), privateKeyPem(key.privateKey, passphrase));
    if (options.passphrase === undefined) write(path.join(dir, 'passphrase'), `${passphrase}\n`);
    write(path.join(dir, 'certificate.pem'), certificate, 0o644);
  }

  /** The root's private key, decrypted with the given, stored or provided passphrase. */
  public rootKey(id: string, passphrases: PassphraseProvider) {
    const keyPem = read(path.join(this.rootDir(id), 'key.pem'));
    if (!keyPem) throw new CaError(`root ${id} has no key in the store`, `restore ${path.join(this.rootDir(id), 'key.pem')} from your offline backup`);
    const stored = read(path.join(this.rootDir(id), 'passphrase'))?.trim();
    const passphrase = stored ?? passphrases(id);
    if (passphrase === undefined) {
      throw new CaError(`signing with root ${id} needs its passphrase`, 'set MESHFORM_CA_PASSPHRASE, or run meshform from a terminal to be asked for it');
    }
    try {
      return readPrivateKey(keyPem, passphrase);
    } catch {
      throw new CaError(`the passphrase of root ${id} is wrong`, 'give the passphrase the root was created with (MESHFORM_CA_PASSPHRASE)');
    }
  }

  /** Re-encrypts a root key with a new passphrase and removes the stored one. */
  public protect(id: string, newPassphrase: string, passphrases: PassphraseProvider): void {
    const key = this.rootKey(id, passphrases);
    write(path.join(this.rootDir(id), 'key.pem'), privateKeyPem(key, newPassphrase));
    fs.rmSync(path.join(this.rootDir(id), 'passphrase'), { force: true });
  }

  /** Signs root `id`'s key and subject with root `previous` (valid until the earlier of the two expiries). */
  public crossSign(id: string, previous: string, passphrases: PassphraseProvider, now = new Date()): void {
    const newRoot = this.rootCertificate(id)!;
    const oldRoot = this.rootCertificate(previous)!;
    const newFacts = certificateFacts(newRoot);
    const oldFacts = certificateFacts(oldRoot);
    const cross = issueCertificate({
      commonName: '',
      subjectFromPem: newRoot,
      publicKey: new X509Certificate(newRoot).publicKey,
      issuer: { certificatePem: oldRoot, privateKey: this.rootKey(previous, passphrases) },
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(Math.min(newFacts.notAfter.getTime(), oldFacts.notAfter.getTime())),
      ca: {},
    });
    write(path.join(this.rootDir(id), 'cross-signed.pem'), cross, 0o644);
  }

  /** Issues a datacenter's intermediate under root `rootId` (path length 0: it issues leaves only). */
  public issueIntermediate(dc: string, rootId: string, options: { mesh: string; keyAlgorithm: KeyAlgorithm; validityDays: number; now?: Date }, passphrases: PassphraseProvider): void {
    const now = options.now ?? new Date();
    const rootPem = this.rootCertificate(rootId)!;
    const key = generateKey(options.keyAlgorithm);
    const notAfter = Math.min(now.getTime() + options.validityDays * DAY, certificateFacts(rootPem).notAfter.getTime());
    const certificate = issueCertificate({
      commonName: `${options.mesh} ${dc} intermediate (${rootId})`,
      organization: 'meshform',
      publicKey: key.publicKey,
      issuer: { certificatePem: rootPem, privateKey: this.rootKey(rootId, passphrases) },
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(notAfter),
      ca: { pathLength: 0 },
    });
    write(path.join(this.dcDir(dc), 'intermediate-key.pem'), privateKeyPem(key.privateKey));
    write(path.join(this.dcDir(dc), 'intermediate.pem'), certificate, 0o644);
    fs.rmSync(path.join(this.dcDir(dc), 'server.pem'), { force: true });
  }

  /** Issues a datacenter's server certificate from its intermediate; the chain carries the cross-signed root. */
  public issueServer(request: ServerCertificateRequest, options: { keyAlgorithm: KeyAlgorithm; validityDays: number; crossChain?: string; now?: Date }): void {
    const now = options.now ?? new Date();
    const intermediate = this.intermediate(request.datacenter)!;
    const key = generateKey(options.keyAlgorithm);
    const notAfter = Math.min(now.getTime() + options.validityDays * DAY, certificateFacts(intermediate.certificatePem).notAfter.getTime());
    const leaf = issueCertificate({
      commonName: request.dnsNames[0]!,
      publicKey: key.publicKey,
      issuer: { certificatePem: intermediate.certificatePem, privateKey: readPrivateKey(intermediate.keyPem) },
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(notAfter),
      dnsNames: request.dnsNames,
      ipAddresses: request.ipAddresses,
    });
    write(path.join(this.dcDir(request.datacenter), 'server-key.pem'), privateKeyPem(key.privateKey));
    write(path.join(this.dcDir(request.datacenter), 'server.pem'), `${leaf}${intermediate.certificatePem}${options.crossChain ?? ''}`, 0o644);
  }
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

/** One certificate as `meshform ca status` shows it. */
export interface CertificateStatus extends CertificateFacts {
  /** What it is: `root root-1`, `cross-signed root-2`, `intermediate dc1`, `server dc1`. */
  readonly role: string;
  readonly daysLeft: number;
  /** `ok`, `due` (renew/rotate soon) or `invalid`. */
  readonly state: 'ok' | 'due' | 'invalid';
  readonly problems: readonly string[];
}

/** Everything wrong or due with a mesh's CA material, for the topology's plan and datacenters. */
export interface CaInspection {
  readonly certificates: CertificateStatus[];
  /** Problems meshform cannot fix by issuing (expired root, foreign intermediate, missing root...). */
  readonly errors: string[];
}

function status(role: string, pem: string, now: Date, windowDays: number, problems: string[], extraDue = false): CertificateStatus {
  const facts = certificateFacts(pem);
  const daysLeft = Math.floor((facts.notAfter.getTime() - now.getTime()) / DAY);
  if (facts.notAfter.getTime() <= now.getTime()) problems.push(`expired on ${facts.notAfter.toISOString()}`);
  if (facts.notBefore.getTime() > now.getTime()) problems.push(`not valid before ${facts.notBefore.toISOString()}`);
  const state = problems.length > 0 ? 'invalid' : daysLeft <= windowDays || extraDue ? 'due' : 'ok';
  return { ...facts, role, daysLeft, state, problems };
}

/** Checks a mesh's CA material against its plan: chains, CA constraints, keys, SANs, validity, trust. */
export function inspectCa(material: CaMaterial, plan: CaPlan, requests: readonly ServerCertificateRequest[], now = new Date()): CaInspection {
  const errors: string[] = [];
  const certificates: CertificateStatus[] = [];
  const trusted = [plan.root, ...(plan.previousRoot ? [plan.previousRoot] : [])];
  for (const id of trusted) {
    const pem = material.rootCertificate(id);
    if (!pem) {
      errors.push(`root ${id} is not in the store`);
      continue;
    }
    const problems: string[] = [];
    const facts = certificateFacts(pem);
    if (!facts.isCa) problems.push('has no CA basic constraints');
    if (!isSignedBy(pem, pem)) problems.push('is not self-signed');
    const entry = status(`root ${id}${id === plan.previousRoot ? ' (being retired)' : ''}`, pem, now, plan.rotationWindowDays, problems);
    certificates.push(entry);
    if (entry.state === 'invalid') errors.push(`root ${id} ${entry.problems.join('; ')}`);
    else if (id === plan.root && entry.daysLeft <= plan.rotationWindowDays) {
      errors.push(`root ${id} expires in ${entry.daysLeft} days, inside the rotation window (${plan.rotationWindowDays} days)`);
    }
  }
  if (plan.previousRoot && plan.crossSign) {
    const cross = material.crossCertificate(plan.root);
    const oldRoot = material.rootCertificate(plan.previousRoot);
    const newRoot = material.rootCertificate(plan.root);
    if (cross && oldRoot && newRoot) {
      const problems: string[] = [];
      if (!isSignedBy(cross, oldRoot)) problems.push(`is not signed by ${plan.previousRoot}`);
      if (certificateFacts(cross).subject !== certificateFacts(newRoot).subject) problems.push(`does not carry ${plan.root}'s subject`);
      certificates.push(status(`cross-signed ${plan.root} by ${plan.previousRoot}`, cross, now, 0, problems));
    }
  }
  const activeRoot = material.rootCertificate(plan.root);
  for (const request of requests) {
    const dc = request.datacenter;
    const intermediate = material.intermediate(dc);
    if (intermediate) {
      const problems: string[] = [];
      const facts = certificateFacts(intermediate.certificatePem);
      if (!facts.isCa) problems.push('has no CA basic constraints');
      if (!keyMatchesCertificate(intermediate.certificatePem, readPrivateKey(intermediate.keyPem))) problems.push('does not match its key');
      const byActive = activeRoot !== undefined && isSignedBy(intermediate.certificatePem, activeRoot);
      const previousRoot = plan.previousRoot ? material.rootCertificate(plan.previousRoot) : undefined;
      const byPrevious = previousRoot !== undefined && isSignedBy(intermediate.certificatePem, previousRoot);
      const knownRoot = material.roots().some((id) => isSignedBy(intermediate.certificatePem, material.rootCertificate(id)!));
      if (!byActive && !byPrevious) {
        if (knownRoot) problems.push(`was issued by a root the mesh no longer trusts`);
        else {
          problems.push('does not chain to the mesh root');
          errors.push(`intermediate of ${dc} does not chain to the mesh root: it belongs to another trust domain`);
        }
      }
      certificates.push(status(`intermediate ${dc}`, intermediate.certificatePem, now, plan.rotationWindowDays, problems, !byActive && byPrevious));
    }
    const server = material.server(dc);
    if (server && intermediate) {
      const [leaf] = splitPem(server.chainPem);
      const problems: string[] = [];
      const facts = certificateFacts(leaf!);
      if (facts.isCa) problems.push('is a CA certificate');
      if (!keyMatchesCertificate(leaf!, readPrivateKey(server.keyPem))) problems.push('does not match its key');
      if (!isSignedBy(leaf!, intermediate.certificatePem)) problems.push(`is not issued by ${dc}'s intermediate`);
      const present = new Set((facts.subjectAltName ?? '').toLowerCase().split(', '));
      const missing = [...request.dnsNames.map((d) => `DNS:${d}`), ...request.ipAddresses.map((ip) => `IP Address:${sanIp(ip)}`)].filter(
        (san) => !present.has(san.toLowerCase()),
      );
      const sanChange = missing.length > 0;
      certificates.push(status(`server ${dc}`, leaf!, now, plan.rotationWindowDays, problems, sanChange));
    }
  }
  return { certificates, errors };
}

/** What reconciling did, for the CLI to report. */
export interface CaActions {
  readonly created: string[];
}

/**
 * Brings the store in line with the plan: creates the first root (unattended when no passphrase is given),
 * cross-signs a new root, and issues or renews every datacenter's intermediate and server certificate that
 * is missing, invalid, due, issued under the previous root, or lacking a requested SAN.
 */
export function reconcileCa(
  material: CaMaterial,
  plan: CaPlan,
  requests: readonly ServerCertificateRequest[],
  mesh: string,
  passphrases: PassphraseProvider,
  now = new Date(),
): CaActions {
  const created: string[] = [];
  const roots = material.roots();
  if (!material.rootCertificate(plan.root)) {
    if (roots.length > 0) {
      throw new CaError(`root ${plan.root} is not in the store (it has ${roots.join(', ')})`, `create it with \`meshform ca rotate --root --id ${plan.root}\``);
    }
    const passphrase = passphrases(plan.root);
    material.createRoot(plan.root, { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.rootValidityDays, mesh, ...(passphrase ? { passphrase } : {}), now });
    created.push(`root ${plan.root}${passphrase ? '' : ' (unattended: its passphrase is stored beside it; run `meshform ca protect`)'}`);
  }
  if (plan.previousRoot) {
    if (!material.rootCertificate(plan.previousRoot)) {
      throw new CaError(`previous root ${plan.previousRoot} is not in the store`, 'restore it, or remove previousRoot if the rotation is over');
    }
    if (plan.crossSign && !material.crossCertificate(plan.root)) {
      material.crossSign(plan.root, plan.previousRoot, passphrases, now);
      created.push(`cross-signed ${plan.root} by ${plan.previousRoot}`);
    }
  }
  const inspection = inspectCa(material, plan, requests, now);
  if (inspection.errors.length > 0) throw new CaError(inspection.errors.join('; '), 'see `meshform ca status`; rotate or restore the root');
  const byRole = new Map(inspection.certificates.map((c) => [c.role, c]));
  const crossChain = plan.previousRoot && plan.crossSign ? material.crossCertificate(plan.root) : undefined;
  for (const request of requests) {
    const dc = request.datacenter;
    const intermediate = byRole.get(`intermediate ${dc}`);
    let reissued = false;
    if (!intermediate || intermediate.state !== 'ok') {
      material.issueIntermediate(dc, plan.root, { mesh, keyAlgorithm: plan.keyAlgorithm, validityDays: plan.intermediateValidityDays, now }, passphrases);
      created.push(`intermediate ${dc} (${plan.root})`);
      reissued = true;
    }
    const server = byRole.get(`server ${dc}`);
    const chainCurrent = material.server(dc)?.chainPem.endsWith(`${material.intermediate(dc)!.certificatePem}${crossChain ?? ''}`) ?? false;
    if (reissued || !server || server.state !== 'ok' || !chainCurrent) {
      material.issueServer(request, { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.serverCertificateValidityDays, ...(crossChain ? { crossChain } : {}), now });
      created.push(`server certificate ${dc}`);
    }
  }
  return { created };
}

/** The TLS material one datacenter's servers get: the trust bundle (roots), their chain and key. */
export function datacenterTls(material: CaMaterial, plan: CaPlan, dc: string): { caBundle: string; serverChain: string; serverKey: string } {
  const roots = [plan.root, ...(plan.previousRoot ? [plan.previousRoot] : [])].map((id) => material.rootCertificate(id)!);
  const server = material.server(dc);
  if (!server) throw new CaError(`datacenter ${dc} has no server certificate yet`, 'run `meshform synth` to issue it');
  return { caBundle: roots.join(''), serverChain: server.chainPem, serverKey: server.keyPem };
}
