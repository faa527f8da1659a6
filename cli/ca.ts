import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CaPlan } from '../constructs/certificate-authority';
import { caErrors } from '../constructs/errors';
import {
  inspectCa,
  passphraseFromEnvironment,
  PassphraseProvider,
  reconcileCa,
} from '../constructs/private/ca-material';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { isSignedBy } from '../constructs/private/x509';
import { SecretStore } from '../constructs/secret-store';
import { childEnvironment } from './environment';
import { CliError, MESHFORM, style } from './output';

/** Exit codes of `meshform ca status`, for CI. */
export const CA_EXIT = { ok: 0, due: 10, invalid: 20 } as const;

/** Reads a line from the terminal without echo; undefined when there is no terminal. */
export function promptHidden(question: string): string | undefined {
  if (!process.stdin.isTTY) return undefined;
  process.stderr.write(question);
  spawnSync('stty', ['-echo'], { stdio: 'inherit', env: childEnvironment() });
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
    spawnSync('stty', ['echo'], { stdio: 'inherit', env: childEnvironment() });
    process.stderr.write('\n');
  }
}

/** Passphrases from MESHFORM_CA_PASSPHRASE_<ROOT> or MESHFORM_CA_PASSPHRASE, else asked on the terminal (once per root and run). */
export function passphrases(): PassphraseProvider {
  const asked = new Map<string, string | undefined>();
  return (rootId) => {
    const fromEnvironment = passphraseFromEnvironment(rootId);
    if (fromEnvironment) return fromEnvironment;
    if (!asked.has(rootId)) asked.set(rootId, promptHidden(`Passphrase of root ${rootId}: `));
    return asked.get(rootId);
  };
}

/** A new root's passphrase from the environment, or asked twice on the terminal; at least 12 characters. */
export const newPassphrase: PassphraseProvider = (rootId) => {
  const subject = `root ${rootId}`;
  const fromEnvironment = passphraseFromEnvironment(rootId);
  if (fromEnvironment) {
    if (fromEnvironment.length < 12) throw caErrors.weakPassphrase(subject);
    return fromEnvironment;
  }
  const first = promptHidden(`New passphrase for root ${rootId}: `);
  if (first === undefined) return undefined;
  if (first.length < 12) throw caErrors.weakPassphrase(subject);
  if (promptHidden('Again: ') !== first) throw caErrors.passphrasesDiffer(subject);
  return first;
};

/** The variable that chooses an unattended root for a pipeline (the flag is `--unattended-root`). */
export const UNATTENDED_ROOT_VARIABLE = 'MESHFORM_UNATTENDED_ROOT';

/**
 * Whether the user chose an unattended root (its generated passphrase stored beside its key): the
 * `--unattended-root` flag, or MESHFORM_UNATTENDED_ROOT=1 (true, yes); 0, false, no or unset mean no.
 */
export function unattendedRootChosen(flag = false): boolean {
  if (flag) return true;
  const value = process.env[UNATTENDED_ROOT_VARIABLE]?.trim();
  if (value === undefined || value === '' || /^(0|false|no)$/i.test(value)) return false;
  if (/^(1|true|yes)$/i.test(value)) return true;
  throw new CliError(
    `${UNATTENDED_ROOT_VARIABLE} must be 1 (true, yes) to choose an unattended root, or 0 (false, no): ${JSON.stringify(value)}`,
    2,
  );
}

/**
 * A new root's passphrase: from MESHFORM_CA_PASSPHRASE_<ID> or MESHFORM_CA_PASSPHRASE; else none when the
 * user chose an unattended root (`unattended`); else asked twice on the terminal. Without a terminal and
 * without that choice, refused: a pipeline never creates an unattended root silently.
 */
export function newRootPassphrase(options: { readonly unattended: boolean }): PassphraseProvider {
  return (rootId) => {
    if (passphraseFromEnvironment(rootId) || (!options.unattended && process.stdin.isTTY)) return newPassphrase(rootId);
    if (options.unattended) return undefined;
    throw new CliError(
      `root ${rootId} needs a passphrase and there is no terminal to ask for one: set MESHFORM_CA_PASSPHRASE ` +
        `(or MESHFORM_CA_PASSPHRASE_${rootId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}), or choose an unattended root, ` +
        `its generated passphrase stored beside its key until \`${MESHFORM} ca protect --id ${rootId}\`, ` +
        `with --unattended-root or ${UNATTENDED_ROOT_VARIABLE}=1; no root was created`,
    );
  };
}

/** The manifest of a mesh as meshform last issued certificates for it (kept in the store). */
const LAST_SYNTH = 'synthesized.json';

/** The mesh as the last successful `meshform synth` saw it, from the store. */
export function lastSynthesized(store: SecretStore, mesh: string): MeshManifest | undefined {
  return store.readJson<MeshManifest>(mesh, LAST_SYNTH);
}

/** Records the mesh a synth issued certificates for. */
export function recordSynthesized(store: SecretStore, mesh: MeshManifest): void {
  store.writeJson(mesh.mesh, LAST_SYNTH, mesh);
}

/**
 * Refuses a change of the active root that is not a rotation step: switching from one root to another
 * without trusting both (previousRoot) leaves datacenters still on the old root unable to verify the new
 * chains. Accepted only when the topology allows rotation without cross-signing.
 */
export function checkRootTransition(before: MeshManifest | undefined, after: MeshManifest): void {
  if (!before?.ca || before.ca.plan.root === after.ca.plan.root) return;
  if (after.ca.plan.previousRoot === before.ca.plan.root) return;
  // finishing a rotation: the previous step trusted both roots
  if (before.ca.plan.previousRoot === after.ca.plan.root) return;
  if (after.ca.meshCa.allowRotationWithoutCrossSigning) return;
  throw caErrors.directRootSwitch(`${after.mesh} root ${after.ca.plan.root}`, before.ca.plan.root, after.ca.plan.root);
}

interface RotationJournal {
  readonly from: string;
  readonly to: string;
  readonly issued: string[];
}

/** The rotation journal, relative to the mesh's entry in the store. */
const ROTATION_JOURNAL = path.join('ca', 'rotation.json');

/**
 * Issues whatever the synthesized topology needs (first root, cross-signed root, datacenter intermediates
 * and server certificates), records the progress of a root rotation and refuses to retire the previous
 * root before every datacenter received material under the new one. Returns lines for the summary.
 */
export function reconcileMeshCa(
  store: SecretStore,
  mesh: MeshManifest,
  provider: PassphraseProvider = passphrases(),
  now?: Date,
  creation: PassphraseProvider = newRootPassphrase({ unattended: unattendedRootChosen() }),
): string[] {
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  const open = store.readJson<RotationJournal>(mesh.mesh, ROTATION_JOURNAL);
  if (open && !plan.previousRoot && open.to === plan.root) {
    const missing = mesh.ca.requests.map((r) => r.datacenter).filter((dc) => !open.issued.includes(dc));
    if (missing.length > 0)
      throw caErrors.retirementTooEarly(`${mesh.mesh} root ${open.from}`, open.from, open.to, missing);
  }
  const actions = reconcileCa(ca, plan, mesh.ca.requests, provider, now, creation);
  if (plan.previousRoot) {
    const record: RotationJournal = {
      from: plan.previousRoot,
      to: plan.root,
      issued: mesh.ca.requests.map((r) => r.datacenter).sort(),
    };
    store.writeJson(mesh.mesh, ROTATION_JOURNAL, record);
  } else if (open) {
    store.removeJson(mesh.mesh, ROTATION_JOURNAL);
  }
  const lines = actions.created.map((a) => `issued ${a}`);
  for (const id of ca.roots()) {
    if (ca.isUnattended(id)) {
      lines.push(
        style.yellow(
          `[meshform/unattended-root] root ${id}'s passphrase is stored beside its key: protect it with \`${MESHFORM} ca protect --id ${id}\``,
        ),
      );
    }
  }
  return lines;
}

/** The `meshform ca status` table (or JSON) and its exit code: 0 all valid, 10 something due, 20 invalid or expired. */
export function caStatus(
  store: SecretStore,
  mesh: MeshManifest,
  json: boolean,
  now = new Date(),
): { output: string; code: number } {
  const ca = store.ca(mesh.mesh);
  const inspection = inspectCa(ca, mesh.ca.plan, mesh.ca.requests, now);
  const missing = mesh.ca.requests.filter((r) => !ca.server(r.datacenter)).map((r) => r.datacenter);
  const code =
    inspection.errors.length > 0 || inspection.certificates.some((c) => c.state === 'invalid' || c.state === 'expired')
      ? CA_EXIT.invalid
      : inspection.certificates.some((c) => c.state === 'due') || missing.length > 0
        ? CA_EXIT.due
        : CA_EXIT.ok;
  if (json) {
    const document = {
      mesh: mesh.mesh,
      plan: mesh.ca.plan,
      certificates: inspection.certificates.map((c) => ({
        ...c,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
      })),
      missing,
      errors: inspection.errors.map((e) => ({ code: e.code, subject: e.subject, message: e.message })),
      exitCode: code,
    };
    return { code, output: `${JSON.stringify(document, null, 2)}\n` };
  }
  const lines = [style.bold(`mesh ${mesh.mesh}: ${mesh.ca.description}`)];
  for (const c of inspection.certificates) {
    const state =
      c.state === 'ok' ? style.green('ok') : c.state === 'due' ? style.yellow('DUE') : style.red(c.state.toUpperCase());
    lines.push(`  ${state.padEnd(8)} ${c.role}`);
    lines.push(`           subject ${c.subject}`);
    lines.push(`           issuer  ${c.issuer}`);
    lines.push(`           sha256  ${c.fingerprint}`);
    lines.push(
      `           expires ${c.notAfter.toISOString()} (${c.daysLeft} days)${c.problems.length ? `: ${c.problems.join('; ')}` : ''}`,
    );
  }
  for (const dc of missing) lines.push(`  ${style.yellow('MISSING')}  server ${dc}: run ${MESHFORM} synth to issue it`);
  for (const e of inspection.errors) lines.push(style.red(`  error: ${e.message}`));
  lines.push(
    code === CA_EXIT.ok
      ? 'all certificates valid'
      : code === CA_EXIT.due
        ? `due within ${mesh.ca.plan.rotationWindowDays} days or missing: run ${MESHFORM} synth (a root: ${MESHFORM} ca rotate --root)`
        : `invalid or expired CA material: see above (${MESHFORM} synth renews expired intermediates and server certificates)`,
  );
  return { output: `${lines.join('\n')}\n`, code };
}

/** What a `meshform ca` command did: its text for a terminal and its document for `--json`. */
export interface CaReport {
  readonly text: string;
  readonly json: { readonly [field: string]: unknown };
}

/** A root id as the store names its directory (the topology's rule): lowercase letters, digits, hyphens. */
export const ROOT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Refuses a root id given on the command line that is not one (it names a directory in the store). */
export function checkRootId(id: string, option = '--id'): string {
  if (!ROOT_ID.test(id))
    throw new CliError(
      `${option} ${JSON.stringify(id)} is not a root id: use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit (e.g. root-2); ` +
        'a root id names a directory in the secret store, so no "/", "..", absolute path or other character',
      2,
    );
  return id;
}

/** `meshform ca init`: creates the mesh's first root with a passphrase (or unattended, when chosen). */
export function caInit(
  store: SecretStore,
  mesh: MeshManifest,
  options: { unattended: boolean; provider?: PassphraseProvider },
): CaReport {
  store.ensure(mesh.mesh);
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  if (ca.roots().length > 0) throw caErrors.rootExists(ca.rootSubject(ca.roots().join(', ')));
  const passphrase = (options.provider ?? newRootPassphrase({ unattended: options.unattended }))(plan.root);
  ca.createRoot(plan.root, {
    keyAlgorithm: plan.keyAlgorithm,
    validityDays: plan.rootValidityDays,
    ...(passphrase ? { passphrase } : {}),
  });
  return {
    text: `created root ${plan.root} of mesh ${mesh.mesh}${passphrase ? ' (key encrypted with your passphrase)' : ` (unattended: protect it with \`${MESHFORM} ca protect --id ${plan.root}\`)`}\n`,
    json: { mesh: mesh.mesh, root: plan.root, unattended: !passphrase },
  };
}

/** `meshform ca rotate --root`: a new root, cross-signed by the active one; prints the topology change. */
export function caRotateRoot(
  store: SecretStore,
  mesh: MeshManifest,
  options: {
    id?: string;
    crossSign: boolean;
    force: boolean;
    unattended?: boolean;
    provider?: PassphraseProvider;
    newPassphrase?: PassphraseProvider;
  },
): CaReport {
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  if (plan.previousRoot) throw caErrors.rotationInProgress(ca.rootSubject(plan.root), plan.previousRoot, plan.root);
  if (!ca.rootCertificate(plan.root)) throw caErrors.rootMissing(ca.rootSubject(plan.root), ca.roots(), plan.root);
  if (!options.crossSign && !options.force)
    throw caErrors.rotationWithoutCrossSigningRefused(ca.rootSubject(plan.root));
  const number = Math.max(0, ...ca.roots().map((id) => Number(/-(\d+)$/.exec(id)?.[1] ?? 0))) + 1;
  const id = options.id === undefined ? `root-${number}` : checkRootId(options.id);
  if (ca.rootCertificate(id)) throw caErrors.rootExists(ca.rootSubject(id));
  const provider = options.provider ?? passphrases();
  // The active root's key is unlocked first: a wrong or missing passphrase leaves the store as it was.
  if (options.crossSign) ca.rootKey(plan.root, provider);
  const passphrase = (options.newPassphrase ?? newRootPassphrase({ unattended: options.unattended === true }))(id);
  ca.createRoot(id, {
    keyAlgorithm: plan.keyAlgorithm,
    validityDays: plan.rootValidityDays,
    ...(passphrase ? { passphrase } : {}),
  });
  try {
    if (options.crossSign) ca.crossSign(id, plan.root, provider);
  } catch (e) {
    ca.removeRoot(id);
    throw e;
  }
  const cross = ca.crossCertificate(id);
  const verified = cross !== undefined && isSignedBy(cross, ca.rootCertificate(plan.root)!);
  const allow = options.crossSign ? '' : ', crossSign: false, allowRotationWithoutCrossSigning: true';
  const next = [
    `set  certificateAuthority: CertificateAuthority.offline({ root: '${id}', previousRoot: '${plan.root}'${allow} })`,
    `then ${MESHFORM} synth (issues every datacenter's intermediate under ${id}) and deploy every datacenter: ` +
      `they trust both roots, and servers present chains ${options.crossSign ? `that datacenters still on ${plan.root} accept` : `that datacenters still on ${plan.root} REJECT until deployed`}`,
    `when every datacenter runs on ${id}: remove previousRoot, ${MESHFORM} synth, deploy again (${plan.root} is no longer trusted)`,
  ];
  return {
    text: [
      `created root ${id}${options.crossSign ? `, cross-signed by ${plan.root}${verified ? ' (verified)' : ''}` : ' (NOT cross-signed)'}${passphrase ? '' : ' (unattended)'}`,
      '',
      'Now make the rotation a planned change, in deploys of its own:',
      `  1. ${next[0]}`,
      `     then ${MESHFORM} synth (issues every datacenter's intermediate under ${id}) and deploy every datacenter:`,
      `     they trust both roots, and servers present chains ${options.crossSign ? `that datacenters still on ${plan.root} accept` : `that datacenters still on ${plan.root} REJECT until deployed`}.`,
      `  2. ${next[2]}.`,
      '',
    ].join('\n'),
    json: {
      mesh: mesh.mesh,
      root: id,
      previousRoot: plan.root,
      crossSigned: options.crossSign,
      verified,
      unattended: !passphrase,
      next,
    },
  };
}

/** `meshform ca rotate --intermediate <dc>`: a new intermediate (and server certificate) under the active root. */
export function caRotateIntermediate(
  store: SecretStore,
  mesh: MeshManifest,
  dc: string,
  provider: PassphraseProvider = passphrases(),
): CaReport {
  const request = mesh.ca.requests.find((r) => r.datacenter === dc);
  if (!request)
    throw caErrors.unknownDatacenter(
      `${mesh.mesh} intermediate ${dc}`,
      dc,
      mesh.ca.requests.map((r) => r.datacenter),
    );
  const ca = store.ca(mesh.mesh);
  const plan = mesh.ca.plan;
  ca.issueIntermediate(
    dc,
    plan.root,
    { keyAlgorithm: plan.keyAlgorithm, validityDays: plan.intermediateValidityDays },
    provider,
  );
  const cross = plan.previousRoot && plan.crossSign ? ca.crossCertificate(plan.root) : undefined;
  const leaf = {
    keyAlgorithm: plan.keyAlgorithm,
    validityDays: plan.serverCertificateValidityDays,
    ...(cross ? { crossChain: cross } : {}),
  };
  ca.issueServer(request, leaf);
  if (request.clientApi) ca.issueClientApi(dc, leaf);
  return {
    text: `issued a new intermediate and ${request.clientApi ? 'server and client API certificates' : 'server certificate'} for ${dc} under ${plan.root}: export the secrets and deploy ${dc}'s stack\n`,
    json: {
      mesh: mesh.mesh,
      datacenter: dc,
      root: plan.root,
      issued: ['intermediate', 'server', ...(request.clientApi ? ['client-api'] : [])],
    },
  };
}

/** `meshform ca protect --id <id>`: re-encrypts a root key with a passphrase and removes the stored one. */
export function caProtect(store: SecretStore, mesh: MeshManifest, id: string, provider?: PassphraseProvider): CaReport {
  checkRootId(id);
  const ca = store.ca(mesh.mesh);
  if (!ca.rootCertificate(id)) throw caErrors.rootMissing(ca.rootSubject(id), ca.roots(), id);
  const passphrase = (provider ?? newPassphrase)(id);
  if (!passphrase)
    throw new CliError('protect needs a new passphrase: set MESHFORM_CA_PASSPHRASE or run from a terminal', 2);
  ca.protect(id, passphrase, passphrases());
  return {
    text: `root ${id}'s key is now encrypted with your passphrase only; keep the store (or at least ca/roots/${id}) offline\n`,
    json: { mesh: mesh.mesh, root: id, unattended: false },
  };
}

function readInput(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
  }
}

/** `meshform ca import --id`: an existing root and its key into the store, checked first. */
export function caImport(
  store: SecretStore,
  mesh: MeshManifest,
  options: { id: string; certificateFile: string; keyFile: string; provider?: PassphraseProvider; now?: Date },
): CaReport {
  checkRootId(options.id);
  const certificate = readInput(options.certificateFile);
  const key = readInput(options.keyFile);
  store.ensure(mesh.mesh);
  const ca = store.ca(mesh.mesh);
  const passphrase = (options.provider ?? newPassphrase)(options.id);
  if (!passphrase)
    throw new CliError('an imported root is stored encrypted: set MESHFORM_CA_PASSPHRASE or run from a terminal', 2);
  ca.importRoot(options.id, certificate, key, {
    passphrase,
    ...(process.env.MESHFORM_IMPORT_KEY_PASSPHRASE
      ? { keyPassphrase: process.env.MESHFORM_IMPORT_KEY_PASSPHRASE }
      : {}),
    rotationWindowDays: mesh.ca.plan.rotationWindowDays,
    ...(options.now ? { now: options.now } : {}),
  });
  const plan = mesh.ca.plan;
  const next =
    plan.root === options.id
      ? `it is the topology's active root: ${MESHFORM} synth issues every datacenter's intermediate under it`
      : ca.rootCertificate(plan.root)
        ? `to rotate to it: set root: '${options.id}', previousRoot: '${plan.root}' and run ${MESHFORM} synth (cross-signing needs ${plan.root}'s passphrase)`
        : `make it the active root: root: '${options.id}' in the topology`;
  return {
    text: `imported root ${options.id} into mesh ${mesh.mesh} (key encrypted with your passphrase)\n${next}\n`,
    json: { mesh: mesh.mesh, root: options.id, active: plan.root === options.id, next },
  };
}

/** `meshform ca sign-csr`: a CA certificate for a request (e.g. Vault's mesh root mount) under the active root. */
export function caSignRequest(
  store: SecretStore,
  mesh: MeshManifest,
  options: { requestFile: string; validityDays?: number; provider?: PassphraseProvider },
): CaReport {
  const plan: CaPlan = mesh.ca.plan;
  const ca = store.ca(mesh.mesh);
  const text = ca.signRequest(
    readInput(options.requestFile),
    plan.root,
    { validityDays: options.validityDays ?? plan.intermediateValidityDays },
    options.provider ?? passphrases(),
  );
  // what signRequest prints: the certificate, then the root it chains to
  const root = ca.rootCertificate(plan.root)!;
  const certificate = text.endsWith(root) ? text.slice(0, text.length - root.length) : text;
  return { text, json: { mesh: mesh.mesh, root: plan.root, certificate, rootCertificate: root } };
}
