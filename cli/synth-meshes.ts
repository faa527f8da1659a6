import * as path from 'node:path';
import { summarizeMeshChanges } from '../constructs/private/mesh-diff';
import { CONNECT_CA_DIR, MESH_MANIFEST_DIR } from '../constructs/private/mesh-manifest';
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
        checkRootTransition(
          before.meshes.find((b) => b.mesh === m.mesh),
          m,
        );
        const { created } = store.ensure(m.mesh);
        const certificates = [
          ...(notes.get(m.mesh) ?? []).map((n) => style.yellow(n)),
          ...reconcileMeshCa(store, m, passphrases(), undefined, creation),
        ];
        recordSynthesized(store, m);
        stores.push({ mesh: m.mesh, created, certificates, ...store.info(m.mesh) });
      }
    }),
  );
  return { result, stores };
}
