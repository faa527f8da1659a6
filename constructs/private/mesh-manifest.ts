import type { DatacenterDescription } from '../datacenter';
import type { CaPlan, MeshCaSummary } from '../certificate-authority';
import type { FederationLink } from '../federation';
import type { ServiceDescription } from '../service';
import type { ResolvedMeshTraffic } from '../mesh';
import type { SecretStoreLocation } from '../secret-store-backend';
import type { StateLocation } from '../state-backend';
import type { ServerCertificateRequest } from './ca-material';

/** Version of the mesh manifest format written to `<outdir>/meshform/<mesh>.json`. */
export const MESH_MANIFEST_FORMAT = 4;

/** Directory (under the synth output) that holds one manifest per mesh. */
export const MESH_MANIFEST_DIR = 'meshform';

/** Directory (under MESH_MANIFEST_DIR) with each mesh's service mesh CA configuration as Consul's API takes it. */
export const CONNECT_CA_DIR = 'connect-ca';

/** A mesh as data: topology, deploy order and the names (never the values) of its secret inputs. */
export interface MeshManifest {
  readonly format: number;
  readonly mesh: string;
  readonly consulVersion: string;
  readonly chartVersion: string;
  readonly domain: string;
  readonly primary: string;
  /** Terraform variable names that carry the mesh's secrets into its datacenter stacks. */
  readonly secretVariables: readonly string[];
  /** The certificate authority plan and each datacenter's server certificate request. */
  readonly ca: {
    readonly plan: CaPlan;
    readonly description: string;
    readonly requests: readonly ServerCertificateRequest[];
    /** The service mesh CA as the primary configures it (provider and the settings that identify its root). */
    readonly meshCa: MeshCaSummary;
  };
  /** Stack names in a safe deploy order. */
  readonly deployOrder: readonly string[];
  readonly datacenters: readonly DatacenterDescription[];
  readonly federation: readonly FederationLink[];
  /** The mesh's services. */
  readonly services: readonly ServiceDescription[];
  /** Mesh-wide traffic settings. */
  readonly traffic: ResolvedMeshTraffic;
  /** Warnings raised at synth, with their stable ids. */
  readonly warnings: readonly { readonly id: string; readonly path: string; readonly message: string }[];
  /** The shared backend of the mesh's secret store; absent for the local store. */
  readonly secretStore?: SecretStoreLocation;
}

/** Name of the Terraform output in which each datacenter's control-plane stack records what it applied. */
export const APPLIED_OUTPUT = 'meshform_applied';

/** Version of the applied record format. */
export const APPLIED_RECORD_FORMAT = 1;

/**
 * What one datacenter's control-plane stack applied, kept in its Terraform state as an output, so every
 * plan (laptop or pipeline) compares against the same thing: the mesh manifest scoped to that datacenter.
 */
export interface AppliedRecord {
  readonly format: number;
  readonly mesh: string;
  readonly stack: string;
  readonly datacenter: string;
  readonly manifest: MeshManifest;
  /**
   * Every datacenter of the mesh when this stack applied, with its stacks (in deploy order) and where each
   * keeps its state: how a later plan finds the state of a datacenter that has left the app, until it is
   * destroyed. Absent in records of an earlier meshform.
   */
  readonly peers?: readonly AppliedPeer[];
}

/** A datacenter of the mesh as an applied record knows it: its stacks and their state. */
export interface AppliedPeer {
  readonly datacenter: string;
  readonly stacks: readonly { readonly name: string; readonly location: StateLocation }[];
}

/** Every datacenter of a manifest as an applied record's peers. */
export function appliedPeers(manifest: MeshManifest): AppliedPeer[] {
  return manifest.datacenters.map((dc) => ({
    datacenter: dc.name,
    stacks: dc.stacks.map((s) => ({ name: s.name, location: s.location })),
  }));
}

/** The mesh manifest as one datacenter sees it: its own description, links, certificate request and services. */
export function scopeManifest(manifest: MeshManifest, datacenter: string): MeshManifest {
  // where the secrets are kept is not something a datacenter applies: choosing another store changes no stack
  const { secretStore: _store, ...mesh } = manifest;
  return {
    ...mesh,
    secretVariables: [],
    deployOrder: [],
    ca: { ...manifest.ca, requests: manifest.ca.requests.filter((r) => r.datacenter === datacenter) },
    datacenters: manifest.datacenters.filter((d) => d.name === datacenter).map((d) => ({ ...d, installs: [] })),
    federation: manifest.federation.filter((l) => l.from === datacenter || l.to === datacenter),
    services: manifest.services.filter((s) => s.datacenters.includes(datacenter)),
    warnings: manifest.warnings.filter((w) => w.path.endsWith(`/${datacenter}`)),
  };
}

/**
 * Reassembles a mesh from what its datacenters applied. Mesh-wide facts (versions, primary, CA) come from the
 * primary's record when there is one (it applies first), else from the first record.
 */
export function mergeAppliedRecords(records: readonly AppliedRecord[]): MeshManifest | undefined {
  if (records.length === 0) return undefined;
  const sorted = [...records].sort((a, b) => a.datacenter.localeCompare(b.datacenter));
  const base = sorted.find((r) => r.manifest.primary === r.datacenter) ?? sorted[0]!;
  const services = new Map<string, ServiceDescription>();
  for (const r of sorted) {
    for (const s of r.manifest.services) {
      const known = services.get(s.name);
      services.set(
        s.name,
        known ? { ...known, datacenters: [...new Set([...known.datacenters, ...s.datacenters])].sort() } : s,
      );
    }
  }
  const links = new Map(sorted.flatMap((r) => r.manifest.federation.map((l) => [`${l.from}>${l.to}`, l] as const)));
  return {
    ...base.manifest,
    datacenters: sorted.flatMap((r) => r.manifest.datacenters),
    federation: [...links.values()],
    services: [...services.values()],
    ca: { ...base.manifest.ca, requests: sorted.flatMap((r) => r.manifest.ca.requests) },
    warnings: sorted.flatMap((r) => r.manifest.warnings),
  };
}
