import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaMaterial, passphraseFromEnvironment, reconcileCa } from '../constructs/private/ca-material';
import { summarizeMeshChanges } from '../constructs/private/mesh-diff';
import { CONNECT_CA_DIR, MESH_MANIFEST_DIR, MeshManifest } from '../constructs/private/mesh-manifest';
import { certificateFacts, splitPem } from '../constructs/private/x509';
import { SecretStore } from '../constructs/secret-store';
import {
  checkRootTransition,
  lastSynthesized,
  newRootPassphrase,
  passphrases,
  reconcileMeshCa,
  recordSynthesized,
  unattendedRootChosen,
} from './ca';
import { CliError, style } from './output';
import { settleSecretsVersions } from './secrets';
import { StoreStatus } from './summary';
import { readCdktfConfig, SynthResult, synthesize } from './synth';

/**
 * A CA rotation step (a new agent TLS root, retiring the previous one, or a new service mesh CA) is refused
 * together with other changes of the mesh: it must be reviewed, planned and deployed on its own. A service
 * mesh CA change Consul cannot cross-sign (AWS Private CA) is refused unless the topology accepts it.
 */
function rotationAlone(previous: SynthResult | undefined, next: SynthResult): Map<string, string[]> {
  const notes = new Map<string, string[]>();
  for (const mesh of next.meshes) {
    const before = previous?.meshes.find((m) => m.mesh === mesh.mesh);
    if (!before || before.format !== mesh.format) continue;
    const changes = summarizeMeshChanges(before, mesh);
    const rotation = changes.rootRotation || changes.meshCaRotation !== undefined;
    if (changes.rootRotation && changes.meshCaRotation) {
      throw new CliError(
        `mesh ${mesh.mesh}: the agent TLS root and the service mesh CA change together; nothing was written. ` +
          'Fix: rotate one, deploy every datacenter, then the other',
      );
    }
    if (rotation && changes.other.length > 0) {
      throw new CliError(
        `mesh ${mesh.mesh}: a ${changes.rootRotation ? 'root rotation' : 'service mesh CA change'} step is refused together with other changes (${changes.other.join('; ')}); nothing was written. ` +
          'Fix: synthesize and deploy the rotation step on its own, then the other changes',
      );
    }
    const meshCa = changes.meshCaRotation;
    if (meshCa?.withoutCrossSigning && !mesh.ca.meshCa.allowRotationWithoutCrossSigning) {
      throw new CliError(
        `mesh ${mesh.mesh}: changing the service mesh CA from ${meshCa.from} to ${meshCa.to} cannot be cross-signed (AWS Private CA does not support it): ` +
          'sidecars reject peers on the other root until every certificate is reissued; nothing was written. ' +
          'Fix: set allowRotationWithoutCrossSigning: true on the certificate authority to accept the disruption',
      );
    }
    const lines: string[] = [];
    if (changes.rootRotation) {
      const plan = mesh.ca.plan;
      lines.push(
        plan.previousRoot
          ? `root rotation step: ${plan.previousRoot} → ${plan.root}${plan.crossSign ? ' (cross-signed)' : ' (NOT cross-signed)'}: deploy every datacenter, then remove previousRoot`
          : `root rotation finished: only ${plan.root} is trusted once every datacenter is deployed`,
      );
    }
    if (meshCa) {
      const file = path.join(
        path.relative(process.cwd(), next.outdir.replace(/\.staging-\d+$/, '')) || '.',
        MESH_MANIFEST_DIR,
        CONNECT_CA_DIR,
        `${mesh.mesh}.json`,
      );
      lines.push(
        `service mesh CA change: ${meshCa.from} → ${meshCa.to}. Consul reads its CA configuration file only at first start: ` +
          `after deploying, apply it on the primary (${mesh.primary}) with \`consul connect ca set-config -config-file ${file}\` (management token)`,
      );
    }
    notes.set(mesh.mesh, lines);
  }
  return notes;
}

/** How a synthesis runs. */
export interface SynthesisOptions {
  /**
   * A mesh without a root gets one whose generated passphrase is kept beside its key (`--unattended-root`),
   * when no passphrase is given and there is no terminal to ask; MESHFORM_UNATTENDED_ROOT=1 chooses it too.
   */
  readonly unattendedRoot?: boolean;
  /**
   * Told each phase as it starts (the app's synthesis, each mesh's secret store), for a command that says what
   * it is doing while it works.
   * @default - silent
   */
  readonly progress?: { step(message: string): void };
}

/** What `meshform synth` produced: the output (with the stack dependencies) and what each mesh's store did. */
export interface MeshSynthesis {
  readonly result: SynthResult;
  readonly stores: StoreStatus[];
}

/**
 * Synthesizes the app of the project's cdktf.json and brings each mesh's secret store in line with it
 * (secrets created if absent, certificates issued or renewed) before the output is replaced: when a CA
 * check refuses, the previous output stays as it was. Holds the project's lock (another synth, plan or
 * deploy of the project is refused) and, while it touches the store, the store's lock.
 */
export function synthesizeMeshes(
  projectDir: string,
  store: SecretStore,
  options: SynthesisOptions = {},
): MeshSynthesis {
  const config = readCdktfConfig(projectDir);
  // a first root without a passphrase only by the user's explicit choice (flag or variable)
  const creation = newRootPassphrase({ unattended: unattendedRootChosen(options.unattendedRoot) });
  const stores: StoreStatus[] = [];
  options.progress?.step(`synthesizing: ${config.app}`);
  const result = synthesize(projectDir, config, (previous, next) =>
    // the store's lock is held from reading what was last issued to recording this synthesis
    store.withLock(() => {
      // what certificates were last issued for (the store) counts over a cdktf.out that may be stale or absent
      const before: SynthResult = {
        outdir: previous?.outdir ?? path.resolve(projectDir, config.output),
        annotations: [],
        dependencies: {},
        meshes: next.meshes.flatMap((m) => {
          const known =
            (store.has(m.mesh) ? lastSynthesized(store, m.mesh) : undefined) ??
            previous?.meshes.find((p) => p.mesh === m.mesh);
          return known ? [known] : [];
        }),
      };
      const notes = rotationAlone(before, next);
      for (const m of next.meshes) {
        if (m.secretStore && m.secretStore.kind !== 'local') {
          // this machine issues when it holds the active root's key (never in the backend), or a person is at
          // the terminal (a first root); a pipeline only reads, and refuses what would need issuing
          // (or the root's passphrase is given: never give it to a pipeline)
          const issuer =
            fs.existsSync(path.join(store.meshDirectory(m.mesh), 'ca', 'roots', m.ca.plan.root, 'key.pem')) ||
            process.stdin.isTTY === true ||
            passphraseFromEnvironment(m.ca.plan.root) !== undefined;
          store.connect(m.mesh, m.secretStore, { writable: issuer });
          if (!issuer) {
            stores.push({
              mesh: m.mesh,
              created: false,
              certificates: verifySharedStore(store, m),
              ...store.info(m.mesh),
            });
            continue;
          }
        }
        checkRootTransition(
          before.meshes.find((b) => b.mesh === m.mesh),
          m,
        );
        options.progress?.step(`secret store of mesh ${m.mesh}: CA material and secrets`);
        const { created } = store.ensure(m.mesh);
        const certificates = [
          ...(notes.get(m.mesh) ?? []).map((n) => style.yellow(n)),
          ...reconcileMeshCa(store, m, passphrases(), undefined, creation),
        ];
        recordSynthesized(store, m);
        settleSecretsVersions(store, m);
        stores.push({ mesh: m.mesh, created, certificates, ...store.info(m.mesh) });
      }
    }),
  );
  return { result, stores };
}

/** The fix when a pipeline finds the shared store behind the app. */
function issueWhereTheRootIs(store: SecretStore, mesh: string): string {
  return `run \`meshform synth\` where the mesh's root key is kept (it issues into ${store.backendOf(mesh)}), then run this again; a pipeline never creates CA material or secrets`;
}

/**
 * A run without the root key (a pipeline) reads the mesh's store from its shared backend and changes nothing:
 * the store must have been issued for exactly this app's certificate authority and datacenters, and (where
 * the keys are readable) hold everything a synthesis with the root key would leave as it is. Returns the
 * summary lines; refuses, saying where to issue, otherwise.
 */
export function verifySharedStore(store: SecretStore, m: MeshManifest, now = new Date()): string[] {
  const where = store.backendOf(m.mesh)!;
  const last = lastSynthesized(store, m.mesh);
  const ca = (x: MeshManifest) => JSON.stringify({ plan: x.ca.plan, requests: x.ca.requests });
  if (!last || ca(last) !== ca(m)) {
    const what = !last
      ? 'holds no record of an issuing synthesis'
      : last.ca.plan.root !== m.ca.plan.root || last.ca.plan.previousRoot !== m.ca.plan.previousRoot
        ? `was issued for root ${last.ca.plan.root}${last.ca.plan.previousRoot ? ` (previous ${last.ca.plan.previousRoot})` : ''}, the app now has ${m.ca.plan.root}${m.ca.plan.previousRoot ? ` (previous ${m.ca.plan.previousRoot})` : ''}`
        : `was issued for datacenters ${last.ca.requests.map((r) => r.datacenter).join(', ')} with other certificate settings than the app's (${m.ca.requests.map((r) => r.datacenter).join(', ')})`;
    throw new CliError(
      `mesh ${m.mesh}: the secret store in ${where} ${what}. Fix: ${issueWhereTheRootIs(store, m.mesh)}`,
    );
  }
  if (store.keysUnreadable(m.mesh)) {
    // the keys are write-only there: the certificates (public) must still be valid
    const dir = store.meshDirectory(m.mesh);
    const expired = fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.pem') && !f.endsWith('key.pem') && !f.split(path.sep).some((p) => p.startsWith('.')))
      .filter((f) =>
        splitPem(fs.readFileSync(path.join(dir, f), 'utf8')).some((c) => certificateFacts(c).notAfter <= now),
      );
    if (expired.length > 0)
      throw new CliError(
        `mesh ${m.mesh}: expired certificates in ${where}: ${expired.join(', ')}. Fix: ${issueWhereTheRootIs(store, m.mesh)}`,
      );
  } else {
    // everything is here: what would a synthesis with the root key do? Any write means the store is behind.
    const material = new CaMaterial(store.meshDirectory(m.mesh), m.mesh, () => {
      throw new CliError(
        `mesh ${m.mesh}: the CA material in ${where} is missing, due or stale for this app (a synthesis with the root key would issue). Fix: ${issueWhereTheRootIs(store, m.mesh)}`,
      );
    });
    store.load(m.mesh);
    reconcileCa(
      material,
      m.ca.plan,
      m.ca.requests,
      () => undefined,
      now,
      () => undefined,
    );
  }
  return [
    `read from ${where}: issued for root ${m.ca.plan.root}, datacenters ${m.ca.requests.map((r) => r.datacenter).join(', ')} (nothing issued here)`,
  ];
}
