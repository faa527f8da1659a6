import type { DatacenterDescription } from '../datacenter';
import type { ServiceDescription } from '../service';
import type { MeshManifest } from './mesh-manifest';

/** What a change does to a part of the mesh. */
export type ChangeAction = 'create' | 'update' | 'delete';

/** The parts of a mesh a change can touch. */
export type ChangeKind = 'mesh' | 'primary' | 'datacenter' | 'servers' | 'gateway' | 'federation' | 'ca' | 'service';

/** One change of the mesh, in mesh terms. */
export interface MeshChange {
  readonly kind: ChangeKind;
  readonly action: ChangeAction;
  /** What changes: `datacenter aws-vms`, `gateway of aws-us-east`, `agent TLS root`, `service db`... */
  readonly subject: string;
  /** The datacenter it belongs to, if any. */
  readonly datacenter?: string;
  /** One line saying what changes. */
  readonly summary: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describeDc(dc: DatacenterDescription): string {
  const gw = dc.meshGateway.address ? `, gateway ${dc.meshGateway.address}:${dc.meshGateway.port}` : '';
  return `${dc.platform} on ${dc.cloud}, ${dc.servers} server${dc.servers === 1 ? '' : 's'}${gw}`;
}

function describeService(s: ServiceDescription): string {
  return `${s.protocol}:${s.port} in ${s.datacenters.join(', ') || 'no datacenter'}${s.failover?.length ? `, fails over to ${s.failover.join(', ')}` : ''}`;
}

function gatewayEndpoint(dc: DatacenterDescription): string {
  return dc.meshGateway.address ? `${dc.meshGateway.address}:${dc.meshGateway.port}` : `(${dc.meshGateway.exposure})`;
}

function describeMeshCa(m: MeshManifest): string {
  const root = Object.entries(m.ca.meshCa.root).map(([k, v]) => `${k}=${v}`);
  return `${m.ca.meshCa.provider}${root.length ? ` (${root.join(', ')})` : ''}`;
}

function rootOf(m: MeshManifest): string {
  const p = m.ca.plan;
  return p.previousRoot
    ? `${p.root} (trusting ${p.previousRoot}${p.crossSign ? ', cross-signed' : ', NOT cross-signed'})`
    : p.root;
}

/**
 * The change from `before` (what was applied, or nothing) to `after` (what was synthesized), in mesh terms:
 * datacenters, servers, gateways, federation links, certificate authority and services.
 */
export function diffMesh(before: MeshManifest | undefined, after: MeshManifest): MeshChange[] {
  const changes: MeshChange[] = [];
  if (!before) {
    changes.push({
      kind: 'mesh',
      action: 'create',
      subject: `mesh ${after.mesh}`,
      summary: `mesh ${after.mesh}: Consul ${after.consulVersion}, primary ${after.primary}`,
      after: after.primary,
    });
  } else {
    for (const key of ['consulVersion', 'chartVersion', 'domain'] as const) {
      if (before[key] !== after[key]) {
        changes.push({
          kind: 'mesh',
          action: 'update',
          subject: key,
          summary: `${key} ${before[key]} → ${after[key]}`,
          before: before[key],
          after: after[key],
        });
      }
    }
    if (before.primary !== after.primary) {
      changes.push({
        kind: 'primary',
        action: 'update',
        subject: 'primary datacenter',
        summary: `primary ${before.primary} → ${after.primary}`,
        before: before.primary,
        after: after.primary,
      });
    }
  }

  const names = [
    ...new Set([...(before?.datacenters ?? []).map((d) => d.name), ...after.datacenters.map((d) => d.name)]),
  ];
  for (const name of names) {
    const b = before?.datacenters.find((d) => d.name === name);
    const a = after.datacenters.find((d) => d.name === name);
    if (!b && a) {
      changes.push({
        kind: 'datacenter',
        action: 'create',
        subject: `datacenter ${name}`,
        datacenter: name,
        summary: `datacenter ${name}: ${describeDc(a)}`,
        after: a,
      });
      continue;
    }
    if (b && !a) {
      changes.push({
        kind: 'datacenter',
        action: 'delete',
        subject: `datacenter ${name}`,
        datacenter: name,
        summary: `datacenter ${name} (${describeDc(b)}) is removed`,
        before: b,
      });
      continue;
    }
    if (!a || !b) continue;
    if (a.platform !== b.platform || a.cloud !== b.cloud) {
      changes.push({
        kind: 'datacenter',
        action: 'update',
        subject: `datacenter ${name}`,
        datacenter: name,
        summary: `datacenter ${name} moves from ${b.platform} on ${b.cloud} to ${a.platform} on ${a.cloud}`,
        before: b,
        after: a,
      });
    }
    if (
      !same(
        a.stacks.map((s) => s.state),
        b.stacks.map((s) => s.state),
      ) ||
      !same(
        a.stacks.map((s) => s.name),
        b.stacks.map((s) => s.name),
      )
    ) {
      changes.push({
        kind: 'datacenter',
        action: 'update',
        subject: `stacks of ${name}`,
        datacenter: name,
        summary: `datacenter ${name}: stacks or state backend change`,
        before: b.stacks,
        after: a.stacks,
      });
    }
    if (a.servers !== b.servers) {
      changes.push({
        kind: 'servers',
        action: 'update',
        subject: `servers of ${name}`,
        datacenter: name,
        summary: `datacenter ${name}: servers ${b.servers} → ${a.servers}`,
        before: b.servers,
        after: a.servers,
      });
    }
    if (!same(a.meshGateway, b.meshGateway)) {
      const moved = gatewayEndpoint(a) !== gatewayEndpoint(b);
      changes.push({
        kind: 'gateway',
        action: 'update',
        subject: `gateway of ${name}`,
        datacenter: name,
        summary: moved
          ? `gateway of ${name}: address ${gatewayEndpoint(b)} → ${gatewayEndpoint(a)}`
          : `gateway of ${name}: ${b.meshGateway.replicas} → ${a.meshGateway.replicas} replicas, ${b.meshGateway.exposure} → ${a.meshGateway.exposure}`,
        before: b.meshGateway,
        after: a.meshGateway,
      });
    }
    if (!same(a.ownHosts, b.ownHosts)) {
      changes.push({
        kind: 'datacenter',
        action: 'update',
        subject: `hosts of ${name}`,
        datacenter: name,
        summary: `datacenter ${name}: hosts change`,
        before: b.ownHosts,
        after: a.ownHosts,
      });
    }
  }

  const link = (l: MeshManifest['federation'][number]) => `${l.from} → ${l.to}`;
  const beforeLinks = new Map((before?.federation ?? []).map((l) => [link(l), l]));
  const afterLinks = new Map(after.federation.map((l) => [link(l), l]));
  for (const [key, l] of afterLinks) {
    const b = beforeLinks.get(key);
    if (!b)
      changes.push({
        kind: 'federation',
        action: 'create',
        subject: `link ${key}`,
        datacenter: l.from,
        summary: `federation ${key} via ${l.primaryGateways.join(', ') || '(gateway address at apply)'}`,
        after: l,
      });
    else if (!same(b, l)) {
      changes.push({
        kind: 'federation',
        action: 'update',
        subject: `link ${key}`,
        datacenter: l.from,
        summary: `federation ${key}: dials ${l.primaryGateways.join(', ')} instead of ${b.primaryGateways.join(', ')}`,
        before: b,
        after: l,
      });
    }
  }
  for (const [key, l] of beforeLinks) {
    if (!afterLinks.has(key))
      changes.push({
        kind: 'federation',
        action: 'delete',
        subject: `link ${key}`,
        datacenter: l.from,
        summary: `federation ${key} is removed`,
        before: l,
      });
  }

  if (!before) {
    changes.push({
      kind: 'ca',
      action: 'create',
      subject: 'agent TLS root',
      summary: `agent TLS: root ${rootOf(after)}, one intermediate per datacenter`,
      after: after.ca.plan,
    });
    changes.push({
      kind: 'ca',
      action: 'create',
      subject: 'service mesh CA',
      summary: `service mesh CA: ${describeMeshCa(after)}`,
      after: after.ca.meshCa,
    });
  } else {
    const root = (m: MeshManifest) => ({
      root: m.ca.plan.root,
      previousRoot: m.ca.plan.previousRoot,
      crossSign: m.ca.plan.crossSign,
    });
    if (!same(root(before), root(after))) {
      changes.push({
        kind: 'ca',
        action: 'update',
        subject: 'agent TLS root',
        summary: `agent TLS root ${rootOf(before)} → ${rootOf(after)}`,
        before: root(before),
        after: root(after),
      });
    }
    if (before.ca.meshCa.provider !== after.ca.meshCa.provider || !same(before.ca.meshCa.root, after.ca.meshCa.root)) {
      changes.push({
        kind: 'ca',
        action: 'update',
        subject: 'service mesh CA',
        summary: `service mesh CA ${describeMeshCa(before)} → ${describeMeshCa(after)}`,
        before: before.ca.meshCa,
        after: after.ca.meshCa,
      });
    }
    const settings = (m: MeshManifest) => {
      const { root: _r, previousRoot: _p, crossSign: _c, provider: _v, ...rest } = m.ca.plan;
      return rest;
    };
    if (!same(settings(before), settings(after))) {
      changes.push({
        kind: 'ca',
        action: 'update',
        subject: 'certificate settings',
        summary: 'certificate lifetimes or key type change (certificates are reissued)',
        before: settings(before),
        after: settings(after),
      });
    }
    for (const request of after.ca.requests) {
      const b = before.ca.requests.find((r) => r.datacenter === request.datacenter);
      if (b && !same(b, request)) {
        changes.push({
          kind: 'ca',
          action: 'update',
          subject: `server certificate of ${request.datacenter}`,
          datacenter: request.datacenter,
          summary: `server certificate of ${request.datacenter}: names change (reissued)`,
          before: b,
          after: request,
        });
      }
    }
  }

  const services = [...new Set([...(before?.services ?? []).map((s) => s.name), ...after.services.map((s) => s.name)])];
  for (const name of services) {
    const b = before?.services.find((s) => s.name === name);
    const a = after.services.find((s) => s.name === name);
    if (!b && a)
      changes.push({
        kind: 'service',
        action: 'create',
        subject: `service ${name}`,
        summary: `service ${name}: ${describeService(a)}`,
        after: a,
      });
    else if (b && !a)
      changes.push({
        kind: 'service',
        action: 'delete',
        subject: `service ${name}`,
        summary: `service ${name} is removed`,
        before: b,
      });
    else if (a && b && !same(a, b))
      changes.push({
        kind: 'service',
        action: 'update',
        subject: `service ${name}`,
        summary: `service ${name}: ${describeService(b)} → ${describeService(a)}`,
        before: b,
        after: a,
      });
  }
  return changes;
}

/** The parts of a change that decide whether it may go with others. */
export interface MeshChangeSummary {
  /** True when the agent TLS root changed (root, previous root or cross-signing): a rotation step. */
  readonly rootRotation: boolean;
  /** The service mesh CA's root changed (provider, Vault root mount, PCA ARN). */
  readonly meshCaRotation?: {
    readonly from: string;
    readonly to: string;
    /** Consul cannot cross-sign this change (AWS Private CA on either side). */
    readonly withoutCrossSigning: boolean;
  };
  /** Everything else that changed, in words. */
  readonly other: string[];
}

/** Compares two manifests of one mesh, separating CA rotations from every other change. */
export function summarizeMeshChanges(before: MeshManifest, after: MeshManifest): MeshChangeSummary {
  const changes = diffMesh(before, after);
  const rotation = (c: MeshChange) =>
    c.kind === 'ca' && (c.subject === 'agent TLS root' || c.subject === 'service mesh CA');
  const meshCa = changes.some((c) => c.kind === 'ca' && c.subject === 'service mesh CA');
  return {
    rootRotation: changes.some((c) => c.kind === 'ca' && c.subject === 'agent TLS root'),
    ...(meshCa
      ? {
          meshCaRotation: {
            from: describeMeshCa(before),
            to: describeMeshCa(after),
            withoutCrossSigning: !before.ca.meshCa.canCrossSign || !after.ca.meshCa.canCrossSign,
          },
        }
      : {}),
    other: changes
      .filter((c) => !rotation(c))
      .map((c) =>
        c.kind === 'datacenter' || c.kind === 'servers' || c.kind === 'gateway'
          ? `datacenter ${c.datacenter} changed`
          : c.summary,
      )
      .filter((v, i, all) => all.indexOf(v) === i),
  };
}
