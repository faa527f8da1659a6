import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { CaPlan } from '../constructs/certificate-authority';
import {
  CaError,
  CaMaterial,
  inspectCa,
  PassphraseProvider,
  reconcileCa,
  ServerCertificateRequest,
} from '../constructs/private/ca-material';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { isSignedBy } from '../constructs/private/x509';
import { SecretStore } from '../constructs/secret-store';
import { CliError, style } from './output';

/** Exit codes of `meshform ca status`, for CI. */
export const CA_EXIT = { ok: 0, due: 10, invalid: 20 } as const;

/** Reads a line from the terminal without echo; undefined when there is no terminal. */
export function promptHidden(question: string): string | undefined {
  if (!process.stdin.isTTY) return undefined;
  process.stderr.write(question);
  spawnSync('stty', ['-echo'], { stdio: 'inherit' });
  try {
    const buffer = Buffer.alloc(1);
    let line = '';
    for (;;) {
      const n = fs.readSync(0, buffer, 0, 1, null);
      if (n === 0 || buffer[0] === 10 || buffer[0] === 13) break;
      line += buffer.toString('utf8', 0, n);
    }
    return line;
  } finally {
    spawnSync('stty', ['echo'], { stdio: 'inherit' });
    process.stderr.write('\n');
  }
}

/** Passphrases from MESHFORM_CA_PASSPHRASE, else asked on the terminal (once per root and run). */
export function passphrases(): PassphraseProvider {
  const asked = new Map<string, string | undefined>();
  return (rootId) => {
    if (process.env.MESHFORM_CA_PASSPHRASE) return process.env.MESHFORM_CA_PASSPHRASE;
    if (!asked.has(rootId)) asked.set(rootId, promptHidden(`Passphrase of root ${rootId}: `));
    return asked.get(rootId);
  };
}

/** Runs an action that may raise a CaError, turning it into a CLI error. */
function caAction<T>(action: () => T): T {
  try {
    return action();
  } catch (e) {
    if (e instanceof CaError) throw new CliError(e.message);
    throw e;
  }
}

/**
 * Issues whatever the synthesized topology needs (first root, cross-signed root, datacenter intermediates
 * and server certificates) and records the progress of a root rotation. Returns lines for the summary.
 */
export function reconcileMeshCa(store: SecretStore, mesh: MeshManifest, provider: PassphraseProvider = passphrases()): string[] {
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  checkRetirement(store, mesh);
  const actions = caAction(() => reconcileCa(ca, plan, mesh.ca.requests, mesh.mesh, provider));
  if (plan.previousRoot) recordRotation(store, mesh, plan);
  const lines = actions.created.map((a) => `issued ${a}`);
  for (const id of ca.roots()) {
    if (ca.isUnattended(id)) {
      lines.push(style.yellow(`[meshform/unattended-root] root ${id}'s passphrase is stored beside its key: protect it with \`meshform ca protect --root ${id}\``));
    }
  }
  return lines;
}

interface RotationJournal {
  readonly from: string;
  readonly to: string;
  readonly issued: string[];
}

function journalFile(store: SecretStore, mesh: string): string {
  return `${store.meshDirectory(mesh)}/ca/rotation.json`;
}

function recordRotation(store: SecretStore, mesh: MeshManifest, plan: CaPlan): void {
  const journal: RotationJournal = { from: plan.previousRoot!, to: plan.root, issued: mesh.ca.requests.map((r) => r.datacenter).sort() };
  fs.writeFileSync(journalFile(store, mesh.mesh), `${JSON.stringify(journal, null, 2)}\n`, { mode: 0o600 });
}

/**
 * Retiring the previous root (the topology no longer names it) is refused while a datacenter of the mesh
 * has not received material under the new root during the rotation.
 */
function checkRetirement(store: SecretStore, mesh: MeshManifest): void {
  const file = journalFile(store, mesh.mesh);
  if (!fs.existsSync(file) || mesh.ca.plan.previousRoot) return;
  const journal = JSON.parse(fs.readFileSync(file, 'utf8')) as RotationJournal;
  if (journal.to !== mesh.ca.plan.root) return;
  const missing = mesh.ca.requests.map((r) => r.datacenter).filter((dc) => !journal.issued.includes(dc));
  if (missing.length > 0) {
    throw new CliError(
      `retiring root ${journal.from} is refused: ${missing.join(', ')} never received certificates under ${journal.to}. ` +
        `Fix: keep \`previousRoot: '${journal.from}'\`, synthesize and deploy every datacenter, then remove it`,
    );
  }
  fs.rmSync(file);
}

/** The `meshform ca status` table and its exit code. */
export function caStatus(store: SecretStore, mesh: MeshManifest, json: boolean): { output: string; code: number } {
  const ca = store.ca(mesh.mesh);
  const inspection = inspectCa(ca, mesh.ca.plan, mesh.ca.requests);
  const code =
    inspection.errors.length > 0 || inspection.certificates.some((c) => c.state === 'invalid')
      ? CA_EXIT.invalid
      : inspection.certificates.some((c) => c.state === 'due') || missingMaterial(ca, mesh.ca.requests)
        ? CA_EXIT.due
        : CA_EXIT.ok;
  if (json) {
    return {
      code,
      output: `${JSON.stringify(
        {
          mesh: mesh.mesh,
          plan: mesh.ca.plan,
          certificates: inspection.certificates.map((c) => ({ ...c, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() })),
          errors: inspection.errors,
          exitCode: code,
        },
        null,
        2,
      )}\n`,
    };
  }
  const lines = [style.bold(`mesh ${mesh.mesh}: ${mesh.ca.description}`)];
  for (const c of inspection.certificates) {
    const state = c.state === 'ok' ? style.green('ok') : c.state === 'due' ? style.yellow('DUE') : style.red('INVALID');
    lines.push(`  ${state.padEnd(8)} ${c.role}`);
    lines.push(`           subject ${c.subject}`);
    lines.push(`           issuer  ${c.issuer}`);
    lines.push(`           sha256  ${c.fingerprint}`);
    lines.push(`           expires ${c.notAfter.toISOString()} (${c.daysLeft} days)${c.problems.length ? `: ${c.problems.join('; ')}` : ''}`);
  }
  for (const request of mesh.ca.requests) {
    if (!ca.server(request.datacenter)) lines.push(`  ${style.yellow('MISSING')}  server ${request.datacenter}: run meshform synth to issue it`);
  }
  for (const e of inspection.errors) lines.push(style.red(`  error: ${e}`));
  lines.push(
    code === CA_EXIT.ok
      ? 'all certificates valid'
      : code === CA_EXIT.due
        ? `certificates due for renewal within ${mesh.ca.plan.rotationWindowDays} days: run meshform synth (or meshform ca rotate --root for a root)`
        : 'invalid CA material: fix the errors above',
  );
  return { output: `${lines.join('\n')}\n`, code };
}

function missingMaterial(ca: CaMaterial, requests: readonly ServerCertificateRequest[]): boolean {
  return requests.some((r) => !ca.server(r.datacenter));
}

/** `meshform ca init`: creates the mesh's first root with a passphrase (or unattended). */
export function caInit(store: SecretStore, mesh: MeshManifest, options: { unattended: boolean; provider?: PassphraseProvider }): string {
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  if (ca.roots().length > 0) throw new CliError(`mesh ${mesh.mesh} already has roots (${ca.roots().join(', ')}); rotate with \`meshform ca rotate --root\``);
  store.ensure(mesh.mesh);
  let passphrase: string | undefined;
  if (!options.unattended) {
    passphrase = (options.provider ?? newPassphrase)(plan.root);
    if (!passphrase) throw new CliError('a root needs a passphrase: set MESHFORM_CA_PASSPHRASE, run from a terminal, or pass --unattended');
  }
  ca.createRoot(plan.root, { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.rootValidityDays, mesh: mesh.mesh, ...(passphrase ? { passphrase } : {}) });
  return `created root ${plan.root} of mesh ${mesh.mesh}${passphrase ? ' (key encrypted with your passphrase)' : ' (unattended)'}\n`;
}

/** A new passphrase from MESHFORM_CA_PASSPHRASE, or asked twice on the terminal. */
export const newPassphrase: PassphraseProvider = (rootId) => {
  if (process.env.MESHFORM_CA_PASSPHRASE) return process.env.MESHFORM_CA_PASSPHRASE;
  const first = promptHidden(`New passphrase for root ${rootId}: `);
  if (first === undefined) return undefined;
  const second = promptHidden('Again: ');
  if (first !== second) throw new CliError('the passphrases differ');
  if (first.length < 12) throw new CliError('use a passphrase of at least 12 characters');
  return first;
};

/** `meshform ca rotate --root`: a new root, cross-signed by the active one; prints the topology change. */
export function caRotateRoot(
  store: SecretStore,
  mesh: MeshManifest,
  options: { id?: string; crossSign: boolean; force: boolean; provider?: PassphraseProvider },
): string {
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  if (plan.previousRoot) throw new CliError(`a rotation from ${plan.previousRoot} to ${plan.root} is in progress: finish it (remove previousRoot) first`);
  if (!ca.rootCertificate(plan.root)) throw new CliError(`the active root ${plan.root} is not in the store`);
  if (!options.crossSign && !options.force) {
    throw new CliError('a root rotation without cross-signing breaks trust between datacenters until all are updated. Fix: drop --no-cross-sign, or add --force to accept it');
  }
  const number = Math.max(0, ...ca.roots().map((id) => Number(/-(\d+)$/.exec(id)?.[1] ?? 0))) + 1;
  const id = options.id ?? `root-${number}`;
  if (ca.rootCertificate(id)) throw new CliError(`root ${id} already exists`);
  const provider = options.provider ?? passphrases();
  const passphrase = newPassphrase(id);
  caAction(() => {
    ca.createRoot(id, { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.rootValidityDays, mesh: mesh.mesh, ...(passphrase ? { passphrase } : {}) });
    if (options.crossSign) ca.crossSign(id, plan.root, provider);
  });
  const cross = options.crossSign ? ca.crossCertificate(id)! : undefined;
  const verified = cross ? isSignedBy(cross, ca.rootCertificate(plan.root)!) : false;
  return [
    `created root ${id}${options.crossSign ? `, cross-signed by ${plan.root}${verified ? ' (verified)' : ''}` : ' (NOT cross-signed)'}`,
    '',
    'Now make the rotation a planned change, in a deploy of its own:',
    `  1. set  certificateAuthority: CertificateAuthority.offline({ root: '${id}', previousRoot: '${plan.root}'${options.crossSign ? '' : ', crossSign: false, allowRotationWithoutCrossSigning: true'} })`,
    `     then meshform synth (issues every datacenter's intermediate under ${id}) and deploy every datacenter:`,
    `     they trust both roots, and servers present chains ${options.crossSign ? `that datacenters still on ${plan.root} accept` : 'the old root does not accept'}.`,
    `  2. when every datacenter runs on ${id}: remove previousRoot, meshform synth, deploy again (${plan.root} is no longer trusted).`,
    '',
  ].join('\n');
}

/** `meshform ca rotate --intermediate <dc>`: a new intermediate (and server certificate) under the active root. */
export function caRotateIntermediate(store: SecretStore, mesh: MeshManifest, dc: string, provider: PassphraseProvider = passphrases()): string {
  const request = mesh.ca.requests.find((r) => r.datacenter === dc);
  if (!request) throw new CliError(`mesh ${mesh.mesh} has no datacenter ${dc}`);
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  caAction(() => {
    ca.issueIntermediate(dc, plan.root, { mesh: mesh.mesh, keyAlgorithm: plan.keyAlgorithm, validityDays: plan.intermediateValidityDays }, provider);
    const cross = plan.previousRoot && plan.crossSign ? ca.crossCertificate(plan.root) : undefined;
    ca.issueServer(request, { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.serverCertificateValidityDays, ...(cross ? { crossChain: cross } : {}) });
  });
  return `issued a new intermediate and server certificate for ${dc} under ${plan.root}: export the secrets and deploy ${dc}'s stack\n`;
}

/** `meshform ca protect --root <id>`: re-encrypts a root key with a passphrase and removes the stored one. */
export function caProtect(store: SecretStore, mesh: MeshManifest, id: string, provider?: PassphraseProvider): string {
  const ca = store.ca(mesh.mesh);
  if (!ca.rootCertificate(id)) throw new CliError(`mesh ${mesh.mesh} has no root ${id}`);
  const passphrase = (provider ?? newPassphrase)(id);
  if (!passphrase) throw new CliError('protect needs a new passphrase: set MESHFORM_CA_PASSPHRASE or run from a terminal');
  caAction(() => ca.protect(id, passphrase, () => undefined));
  return `root ${id}'s key is now encrypted with your passphrase only; keep the store (or at least ca/roots/${id}) offline\n`;
}
