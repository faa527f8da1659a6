/**
 * Risk gates: changes that hurt a running mesh, caught at plan time. Each names what fires it, why it is
 * dangerous, the safe way, and the `--allow <id>` that acknowledges it.
 */
import type { MeshChange } from '../constructs/private/mesh-diff';
import type { AppliedRecord, MeshManifest } from '../constructs/private/mesh-manifest';
import type { ResourceChange } from './terraform-plan';

/** Every gate, by id. */
export const GATE_IDS = [
  'ca-root-without-cross-signing',
  'server-quorum',
  'server-replacement',
  'primary-change',
  'gateway-readdress',
  'failover-target-removal',
  'stateful-destroy',
] as const;

export type GateId = (typeof GATE_IDS)[number];

/** The gates that compare with what was applied: they cannot be evaluated without every applied record. */
export const RECORD_GATES: readonly GateId[] = [
  'ca-root-without-cross-signing',
  'server-quorum',
  'primary-change',
  'gateway-readdress',
  'failover-target-removal',
  'stateful-destroy',
];

/** A gate that fired, or one that could not be evaluated. */
export interface Gate {
  readonly id: GateId;
  readonly mesh?: string;
  /** `fired`: the change is dangerous; `cannot-evaluate`: what was applied is unknown, so it cannot be told. */
  readonly status: 'fired' | 'cannot-evaluate';
  /** What it is about: a datacenter, a stack, the root. */
  readonly subject: string;
  /** Why it is dangerous and what to do instead (or why it cannot be evaluated and how to fix that). */
  readonly message: string;
  /** What acknowledges it: `--allow <id>`; for a gate that cannot be evaluated, what makes it evaluable. */
  readonly acknowledgeWith: string;
  /** True for a fired gate acknowledged with `--allow`; never for one that cannot be evaluated. */
  readonly acknowledged: boolean;
}

/** A datacenter whose applied record could not be read. */
export interface UnreadableRecord {
  readonly datacenter: string;
  readonly stack: string;
  readonly detail: string;
}

/**
 * The gates that depend on what was applied, reported as cannot be evaluated because the records of
 * `unreadable` could not be read: the plan fails closed unless the user states an assumption.
 */
export function unevaluableGates(mesh: string, unreadable: readonly UnreadableRecord[]): Gate[] {
  if (unreadable.length === 0) return [];
  const names = unreadable.map((u) => u.datacenter).join(', ');
  return RECORD_GATES.map((id) => ({
    id,
    mesh,
    status: 'cannot-evaluate' as const,
    subject: `what ${names} applied`,
    message:
      `cannot evaluate: the applied record of ${unreadable.map((u) => `${u.datacenter} (${u.stack}: ${u.detail})`).join('; ')} could not be read, ` +
      'so a change against it cannot be judged. Give meshform read access to that state, or state an explicit assumption with --assume-unapplied',
    acknowledgeWith: `read access to the state of ${names}, or --assume-unapplied`,
    acknowledged: false,
  }));
}

/** A stack's planned resource changes, for the gates that look at Terraform. */
export interface PlannedStackChanges {
  readonly stack: string;
  readonly resources: readonly ResourceChange[];
  /** The stack left the app (its plan destroys it), and the datacenter it belonged to. */
  readonly leaves?: { readonly datacenter?: string };
}

/** Votes needed to keep a Raft quorum with `servers` servers. */
export function quorum(servers: number): number {
  return Math.floor(servers / 2) + 1;
}

/** A Consul server VM (named `server-<n>` by the VM datacenter stack). */
function serverInstance(resource: ResourceChange): boolean {
  const name = resource.constructPath?.split('/').pop() ?? resource.address.split('.').pop() ?? '';
  return resource.type === 'aws_instance' && name.startsWith('server-');
}

/** True for a resource whose loss loses a control plane's state (Consul's data, its secrets, its cluster). */
function stateful(resource: ResourceChange): boolean {
  switch (resource.type) {
    case 'helm_release':
    case 'kubernetes_namespace_v1':
    case 'aws_eks_cluster':
    case 'aws_eks_node_group':
    case 'aws_kms_key':
    case 'aws_secretsmanager_secret':
    case 'aws_vpc':
      return true;
    default:
      return serverInstance(resource);
  }
}

/** A resource whose replacement or deletion takes Consul servers down. */
function serverResource(resource: ResourceChange): boolean {
  return serverInstance(resource) || resource.type === 'helm_release' || resource.type === 'aws_eks_node_group';
}

/** Why Terraform replaces a resource (` because of <attributes>`), or nothing. */
function replaceReason(resource: ResourceChange): string {
  return resource.replaceBecause ? ` because of ${resource.replaceBecause.join(', ')}` : '';
}

/** Evaluates every gate for one mesh's change; `allowed` holds the acknowledged gate ids. */
/**
 * Evaluates every gate for one mesh's change; `allowed` holds the acknowledged gate ids. `records` are the
 * applied records `before` was merged from (one per datacenter): a root is retired only when each of them
 * shows the cross-signed step.
 */
export function evaluateGates(
  before: MeshManifest | undefined,
  after: MeshManifest,
  changes: readonly MeshChange[],
  stacks: readonly PlannedStackChanges[],
  allowed: ReadonlySet<string>,
  records: readonly AppliedRecord[] = [],
): Gate[] {
  const gates: Gate[] = [];
  const fire = (id: GateId, subject: string, message: string) =>
    gates.push({
      id,
      mesh: after.mesh,
      status: 'fired',
      subject,
      message,
      acknowledgeWith: `--allow ${id}`,
      acknowledged: allowed.has(id),
    });

  if (before) {
    const b = before.ca.plan;
    const a = after.ca.plan;
    if (b.root !== a.root || b.previousRoot !== a.previousRoot || b.crossSign !== a.crossSign) {
      // a cross-signed step from the applied root, or the end of a rotation that was applied with both roots
      const rotationStep = a.previousRoot === b.root && a.crossSign;
      const retirement = a.root === b.root && b.previousRoot !== undefined && a.previousRoot === undefined;
      // every datacenter that stays must have applied the step: the others still trust only the old root
      const lagging = records
        .filter((r) => after.datacenters.some((d) => d.name === r.datacenter))
        .filter((r) => {
          const p = r.manifest.ca.plan;
          return !(p.root === a.root && p.previousRoot === b.previousRoot && p.crossSign);
        })
        .map(
          (r) =>
            `${r.datacenter} (runs ${r.manifest.ca.plan.root}${r.manifest.ca.plan.previousRoot ? ` trusting ${r.manifest.ca.plan.previousRoot}` : ''})`,
        );
      if (retirement && lagging.length > 0) {
        fire(
          'ca-root-without-cross-signing',
          'agent TLS root',
          `retiring ${b.previousRoot} although not every datacenter applied the cross-signed step to ${a.root}: ${lagging.join(', ')}. ` +
            `Their servers trust only the old root and would reject the new chains. Deploy the step (root '${a.root}', previousRoot '${b.previousRoot}') to every datacenter first, then retire ${b.previousRoot}`,
        );
      } else if (!rotationStep && !retirement) {
        fire(
          'ca-root-without-cross-signing',
          'agent TLS root',
          `the agent TLS root changes from ${b.root} to ${a.root} without a cross-signed overlap: datacenters still on ${b.root} reject the new chains until they are deployed. ` +
            `Safe way: root '${a.root}', previousRoot '${b.root}' (cross-signed) in one deploy, then retire ${b.root} in the next`,
        );
      }
    }
    const meshCa = changes.find((c) => c.kind === 'ca' && c.subject === 'service mesh CA');
    if (meshCa && (!before.ca.meshCa.canCrossSign || !after.ca.meshCa.canCrossSign)) {
      fire(
        'ca-root-without-cross-signing',
        'service mesh CA',
        `${meshCa.summary}: AWS Private CA cannot cross-sign, so sidecars reject peers on the other root until every certificate is reissued`,
      );
    }
    if (before.primary !== after.primary) {
      fire(
        'primary-change',
        `primary ${before.primary} → ${after.primary}`,
        `the primary datacenter changes from ${before.primary} to ${after.primary}: ACL and CA authority move, every secondary re-federates, and tokens replicated from ${before.primary} are not carried over. ` +
          'Plan it as a migration: it cannot be undone by another deploy',
      );
    }
    for (const dcBefore of before.datacenters) {
      const dcAfter = after.datacenters.find((d) => d.name === dcBefore.name);
      if (!dcAfter) continue;
      if (dcAfter.servers < quorum(dcBefore.servers)) {
        fire(
          'server-quorum',
          `servers of ${dcBefore.name}`,
          `datacenter ${dcBefore.name} goes from ${dcBefore.servers} to ${dcAfter.servers} server${dcAfter.servers === 1 ? '' : 's'}, below the quorum of ${quorum(dcBefore.servers)} of the running cluster: ` +
            'Raft loses its majority while the servers leave. Step down gradually (5 → 3), one deploy at a time',
        );
      }
      const bAddress = dcBefore.meshGateway.address && `${dcBefore.meshGateway.address}:${dcBefore.meshGateway.port}`;
      const aAddress = dcAfter.meshGateway.address && `${dcAfter.meshGateway.address}:${dcAfter.meshGateway.port}`;
      const dialled =
        before.federation.some((l) => l.to === dcBefore.name) &&
        dcBefore.name === before.primary &&
        dcAfter.name === after.primary;
      if (dialled && bAddress && bAddress !== aAddress) {
        fire(
          'gateway-readdress',
          `gateway of ${dcBefore.name}`,
          `the gateway of ${dcBefore.name}, which every secondary dials (primary_gateways), moves from ${bAddress} to ${aAddress ?? 'no declared address'}: secondaries lose the primary until each is redeployed. ` +
            'Make before break: serve the new address alongside the old one (DNS with both, or keep the old one forwarding), deploy every secondary, then remove the old',
        );
      }
    }
    const removed = before.datacenters
      .filter((d) => !after.datacenters.some((a) => a.name === d.name))
      .map((d) => d.name);
    // a service that stays but no longer fails over to a datacenter that stays
    for (const service of before.services) {
      const now = after.services.find((s) => s.name === service.name);
      const dropped = (service.failover ?? []).filter(
        (dc) => !removed.includes(dc) && !(now?.failover ?? []).includes(dc),
      );
      if (now && dropped.length > 0) {
        fire(
          'failover-target-removal',
          `service ${service.name}`,
          `service ${service.name} no longer fails over to ${dropped.join(', ')} (failover ${(service.failover ?? []).join(' → ')} becomes ${(now.failover ?? []).join(' → ') || 'none'}): ` +
            `while its instances are unhealthy, traffic that fails over there now has nowhere to go. Make sure ${service.name} is healthy where it runs, or add another target first`,
        );
      }
    }
    for (const dc of removed) {
      const dependants = [...before.services, ...after.services]
        .filter((s) => s.failover?.includes(dc))
        .map((s) => s.name);
      if (dependants.length > 0) {
        fire(
          'failover-target-removal',
          `datacenter ${dc}`,
          `datacenter ${dc} is removed but is a failover target of ${[...new Set(dependants)].join(', ')}: their failover would point nowhere. Remove ${dc} from their failover first, deploy, then remove the datacenter`,
        );
      }
    }
    for (const dc of removed) {
      const gone = before.datacenters.find((d) => d.name === dc)!.stacks.map((s) => s.name);
      fire(
        'stateful-destroy',
        `datacenter ${dc}`,
        `datacenter ${dc} leaves the topology: deploy destroys its stacks (${[...gone].reverse().join(', ')}, in that order), its Consul servers and their data. ` +
          'Move its workloads out and remove it from every failover first',
      );
    }
  }
  const removedDatacenters = new Set(
    before?.datacenters.filter((d) => !after.datacenters.some((a) => a.name === d.name)).map((d) => d.name) ?? [],
  );
  for (const stack of stacks) {
    // a stack that leaves while its datacenter stays (a datacenter that leaves is gated as a whole, above)
    if (stack.leaves && !(stack.leaves.datacenter && removedDatacenters.has(stack.leaves.datacenter))) {
      fire(
        'stateful-destroy',
        stack.stack,
        `${stack.stack} left the app: deploy destroys everything it applied (${stack.resources.length} resource${stack.resources.length === 1 ? '' : 's'}: ${stack.resources.map((r) => r.address).join(', ')}). ` +
          'Keep it in the app if it still serves, or back up what it holds first',
      );
    }
    const servers = stack.resources.filter(
      (r) => serverResource(r) && (r.action === 'replace' || r.action === 'delete'),
    );
    const instances = servers.filter((r) => r.type === 'aws_instance');
    const whole = servers.filter((r) => r.type !== 'aws_instance');
    if (instances.length > 1 || whole.length > 0) {
      fire(
        'server-replacement',
        stack.stack,
        `${stack.stack} ${instances.length > 1 ? `replaces or removes ${instances.length} Consul servers at once` : `replaces ${whole.map((r) => r.address).join(', ')}, which takes every server down`} (${servers.map((r) => `${r.address}${replaceReason(r)}`).join('; ')}): quorum is lost. Replace one server at a time (terraform apply -replace=<one server>), waiting for it to rejoin`,
      );
    }
    const destroyed = stack.resources.filter((r) => stateful(r) && (r.action === 'replace' || r.action === 'delete'));
    if (destroyed.length > 0) {
      fire(
        'stateful-destroy',
        stack.stack,
        `${stack.stack} destroys control-plane state: ${destroyed.map((r) => `${r.address} (${r.action}${replaceReason(r)})`).join(', ')}. ` +
          'Back up Consul (consul snapshot save) and its secrets first',
      );
    }
  }
  return gates;
}
