import type { MeshManifest } from './mesh-manifest';

/** The parts of a mesh manifest that a change can touch, compared one by one. */
export interface MeshChangeSummary {
  /** True when the agent TLS root changed (root, previous root or cross-signing): a rotation step. */
  readonly rootRotation: boolean;
  /**
   * The service mesh CA's root changed (provider, Vault root mount, PCA ARN): Consul rotates its mesh root.
   * Undefined when it did not change.
   */
  readonly meshCaRotation?: {
    readonly from: string;
    readonly to: string;
    /** Consul cannot cross-sign this change (AWS Private CA on either side). */
    readonly withoutCrossSigning: boolean;
  };
  /** Everything else that changed, in words (`datacenter aws-vms changed`, `consulVersion 2.0.2 -> 2.0.3`...). */
  readonly other: string[];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describeMeshCa(m: MeshManifest): string {
  const root = Object.entries(m.ca.meshCa.root).map(([k, v]) => `${k}=${v}`);
  return `${m.ca.meshCa.provider}${root.length ? ` (${root.join(', ')})` : ''}`;
}

/** Compares two manifests of one mesh, separating CA rotations from every other change. */
export function summarizeMeshChanges(before: MeshManifest, after: MeshManifest): MeshChangeSummary {
  const root = (m: MeshManifest) => ({
    root: m.ca.plan.root,
    previousRoot: m.ca.plan.previousRoot,
    crossSign: m.ca.plan.crossSign,
  });
  const other: string[] = [];
  for (const key of ['consulVersion', 'chartVersion', 'domain', 'primary'] as const) {
    if (before[key] !== after[key]) other.push(`${key} ${before[key]} -> ${after[key]}`);
  }
  const names = new Set([...before.datacenters.map((d) => d.name), ...after.datacenters.map((d) => d.name)]);
  for (const name of [...names].sort()) {
    const b = before.datacenters.find((d) => d.name === name);
    const a = after.datacenters.find((d) => d.name === name);
    if (!b) other.push(`datacenter ${name} added`);
    else if (!a) other.push(`datacenter ${name} removed`);
    else if (!same({ ...b, installs: undefined }, { ...a, installs: undefined }))
      other.push(`datacenter ${name} changed`);
  }
  if (!same(before.federation, after.federation)) other.push('federation changed');
  const { root: _r, previousRoot: _p, crossSign: _c, provider: _v, ...restBefore } = before.ca.plan;
  const { root: _r2, previousRoot: _p2, crossSign: _c2, provider: _v2, ...restAfter } = after.ca.plan;
  if (!same(restBefore, restAfter) || !same(before.ca.requests, after.ca.requests))
    other.push('certificate settings changed');
  const meshCaChanged =
    before.ca.meshCa.provider !== after.ca.meshCa.provider || !same(before.ca.meshCa.root, after.ca.meshCa.root);
  return {
    rootRotation: !same(root(before), root(after)),
    ...(meshCaChanged
      ? {
          meshCaRotation: {
            from: describeMeshCa(before),
            to: describeMeshCa(after),
            withoutCrossSigning: !before.ca.meshCa.canCrossSign || !after.ca.meshCa.canCrossSign,
          },
        }
      : {}),
    other,
  };
}
