/**
 * `meshform check`: a static proof, before anything is applied, that every declared upstream can be reached:
 * shared trust, a gateway path between the datacenters, an intention that allows the call, a protocol that
 * fits the L7 rules, and failover targets that exist and run the service; and that the primary's Consul servers
 * reach every Kubernetes secondary's API server (its components log in through it), or that this is unproven.
 */
import type { DatacenterDescription } from '../constructs/datacenter';
import { datacenterTls } from '../constructs/private/ca-material';
import type { FederationLogin } from '../constructs/private/egress';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { chainTrusted } from '../constructs/private/x509';
import type { SecretStore } from '../constructs/secret-store';
import type { ServiceDescription } from '../constructs/service';
import { MESHFORM, style } from './output';

/** Exit codes of `meshform check`. */
export const CHECK_EXIT = { ok: 0, broken: 4 } as const;

/** One aspect of an edge. */
export interface EdgeCheck {
  readonly ok: boolean;
  /** What holds (or not). */
  readonly note: string;
  /** How to fix it, when it does not hold. */
  readonly fix?: string;
}

/** A caller in one datacenter and the upstream it calls. */
export interface Edge {
  readonly from: string;
  readonly fromDatacenter: string;
  readonly to: string;
  /** Where the calls go first (and then fail over), when anywhere. */
  readonly toDatacenters: readonly string[];
  readonly trust: EdgeCheck;
  readonly path: EdgeCheck;
  readonly intention: EdgeCheck;
  readonly protocol: EdgeCheck;
  readonly failover: EdgeCheck;
  readonly ok: boolean;
}

/** The primary's servers → a Kubernetes secondary's API server: the ACL logins of the secondary's components. */
export interface LoginEdge {
  /** The primary. */
  readonly from: string;
  /** The secondary. */
  readonly to: string;
  readonly apiServer: string;
  /** How it holds: meshform admits the primary, the allow-list is open, you declared it, or unproven. */
  readonly reach: FederationLogin['reach'];
  readonly ok: boolean;
  readonly note: string;
  readonly fix?: string;
}

/** The check of every mesh. */
export interface CheckDocument {
  readonly format: 1;
  readonly meshes: readonly {
    readonly mesh: string;
    readonly edges: readonly Edge[];
    readonly logins: readonly LoginEdge[];
  }[];
  readonly exitCode: number;
}

const L7 = new Set(['http', 'http2', 'grpc']);

function usesL7(s: ServiceDescription): string[] {
  return [
    ...(s.routes?.length ? ['routes'] : []),
    ...(s.splits?.length ? ['a traffic split'] : []),
    ...(s.retries ? ['retries'] : []),
    ...(s.requestTimeoutMs !== undefined ? ['a request timeout'] : []),
    ...((s.intentions ?? []).some((i) => i.permissions?.length) ? ['L7 permissions'] : []),
  ];
}

function trustCheck(
  manifest: MeshManifest,
  store: SecretStore | undefined,
  from: string,
  targets: readonly string[],
): EdgeCheck {
  const requested = new Set(manifest.ca.requests.map((r) => r.datacenter));
  const missing = [from, ...targets].filter((dc) => !requested.has(dc));
  if (missing.length > 0)
    return {
      ok: false,
      note: `no agent TLS material for ${missing.join(', ')}`,
      fix: `run ${MESHFORM} synth to issue it`,
    };
  const ca = store?.has(manifest.mesh) ? store.ca(manifest.mesh) : undefined;
  if (!ca || [from, ...targets].some((dc) => !ca.server(dc))) {
    return { ok: true, note: `one root (${manifest.ca.plan.root}) by construction; certificates not issued yet` };
  }
  const tls = (dc: string) => datacenterTls(ca, manifest.ca.plan, dc);
  for (const t of targets) {
    if (
      !chainTrusted(tls(from).caBundle, tls(t).serverChain) ||
      !chainTrusted(tls(t).caBundle, tls(from).serverChain)
    ) {
      return {
        ok: false,
        note: `${from} and ${t} do not trust each other's certificates`,
        fix: `run ${MESHFORM} ca status and renew the datacenter that fails (${MESHFORM} ca rotate --intermediate <dc>)`,
      };
    }
  }
  return {
    ok: true,
    note: `verified: chains of ${[...new Set([from, ...targets])].join(', ')} under ${manifest.ca.plan.root}`,
  };
}

function reachable(from: DatacenterDescription, to: DatacenterDescription): boolean {
  return (
    to.meshGateway.reach === 'internet' ||
    (to.peeredWith ?? []).includes(from.name) ||
    (from.peeredWith ?? []).includes(to.name)
  );
}

function pathCheck(manifest: MeshManifest, from: string, targets: readonly string[]): EdgeCheck {
  const remote = targets.filter((t) => t !== from);
  const local = targets.includes(from) ? 'local, then ' : '';
  if (remote.length === 0) return { ok: true, note: 'local' };
  if (manifest.traffic.meshGatewayMode === 'none') {
    return {
      ok: false,
      note: 'mesh gateway mode "none": sidecars dial remote instances directly',
      fix: 'set traffic: { meshGatewayMode: MeshGatewayMode.LOCAL } on the Mesh',
    };
  }
  const dc = (name: string) => manifest.datacenters.find((d) => d.name === name)!;
  const blocked = remote.filter((t) => !reachable(dc(from), dc(t)));
  if (blocked.length > 0) {
    return {
      ok: false,
      note: `the gateway of ${blocked.join(', ')} is reachable only from its own network`,
      fix: `expose it (internetFacing: true, an Elastic IP, or a public load balancer) or peer ${from}'s network with it`,
    };
  }
  return {
    ok: true,
    note: `${local}via mesh gateways (${manifest.traffic.meshGatewayMode} mode) to ${remote.join(', ')}`,
  };
}

function intentionCheck(caller: ServiceDescription, target: ServiceDescription): EdgeCheck {
  const intention = (target.intentions ?? []).find((i) => i.source === caller.name);
  if (!intention) {
    return { ok: false, note: 'no intention: denied by default', fix: `${target.name}.allowFrom(${caller.name})` };
  }
  if (intention.action === 'deny') {
    return {
      ok: false,
      note: `denied by ${target.name}.denyFrom(${caller.name})`,
      fix: `replace it with ${target.name}.allowFrom(${caller.name})`,
    };
  }
  if (intention.permissions?.length) {
    const allowed = intention.permissions.filter((p) => p.action === 'allow');
    if (allowed.length === 0)
      return {
        ok: false,
        note: 'every L7 permission denies',
        fix: `add an HttpPermission.allow({...}) for ${caller.name}`,
      };
    const show = (m: (typeof allowed)[number]['match']) =>
      `${m.methods?.join(',') ?? 'ANY'} ${m.pathExact ?? (m.pathPrefix ? `${m.pathPrefix}*` : m.pathRegex ? `~${m.pathRegex}` : '*')}`;
    return { ok: true, note: `allowed (L7): ${allowed.map((p) => show(p.match)).join(', ')}` };
  }
  return { ok: true, note: 'allowed' };
}

function protocolCheck(target: ServiceDescription): EdgeCheck {
  const l7 = usesL7(target);
  if (l7.length > 0 && !L7.has(target.protocol)) {
    return {
      ok: false,
      note: `${target.name} speaks ${target.protocol} but has ${l7.join(', ')}`,
      fix: `declare ${target.name} with protocol HTTP, HTTP2 or GRPC, or drop the L7 rules`,
    };
  }
  return { ok: true, note: l7.length ? `${target.protocol} (${l7.join(', ')})` : target.protocol };
}

function failoverCheck(manifest: MeshManifest, target: ServiceDescription, first: string | undefined): EdgeCheck {
  const failover = target.failover ?? [];
  for (const dc of failover) {
    if (!manifest.datacenters.some((d) => d.name === dc))
      return {
        ok: false,
        note: `failover target ${dc} is not a datacenter of the mesh`,
        fix: `remove ${dc} from ${target.name}'s failover`,
      };
    if (!target.datacenters.includes(dc))
      return {
        ok: false,
        note: `${target.name} does not run in failover target ${dc}`,
        fix: `run ${target.name} in ${dc} (runsIn) or remove it from the failover`,
      };
  }
  const others = failover.filter((dc) => dc !== first);
  return {
    ok: true,
    note: others.length
      ? `fails over to ${others.join(', ')}`
      : failover.length
        ? `none from ${first} (its failover list only names ${first})`
        : 'none declared',
  };
}

/** Checks every declared upstream of a mesh, from every datacenter its caller runs in. */
export function checkMesh(manifest: MeshManifest, store?: SecretStore): Edge[] {
  const edges: Edge[] = [];
  const byName = new Map(manifest.services.map((s) => [s.name, s]));
  for (const caller of manifest.services) {
    for (const upstream of caller.upstreams ?? []) {
      const target = byName.get(upstream.service);
      for (const from of caller.datacenters) {
        if (!target) {
          const broken = {
            ok: false,
            note: `${upstream.service} is not declared`,
            fix: `declare ${upstream.service} with new Service(mesh, ...)`,
          };
          edges.push({
            from: caller.name,
            fromDatacenter: from,
            to: upstream.service,
            toDatacenters: [],
            trust: broken,
            path: broken,
            intention: broken,
            protocol: broken,
            failover: broken,
            ok: false,
          });
          continue;
        }
        const first = upstream.datacenter ?? (target.datacenters.includes(from) ? from : undefined);
        const failoverTargets = (target.failover ?? []).filter((dc) => target.datacenters.includes(dc) && dc !== first);
        const toDatacenters = [...(first ? [first] : []), ...failoverTargets];
        const failover =
          toDatacenters.length === 0
            ? {
                ok: false,
                note: `${target.name} does not run in ${from} and has no failover`,
                fix: `run ${target.name} in ${from}, add ${target.name}.failoverTo(${target.datacenters.join(', ') || '...'}), or pin addUpstream(${target.name}, { datacenter })`,
              }
            : failoverCheck(manifest, target, first);
        const trust = toDatacenters.length ? trustCheck(manifest, store, from, toDatacenters) : { ok: true, note: '-' };
        const path = toDatacenters.length ? pathCheck(manifest, from, toDatacenters) : { ok: true, note: '-' };
        const intention = intentionCheck(caller, target);
        const protocol = protocolCheck(target);
        edges.push({
          from: caller.name,
          fromDatacenter: from,
          to: target.name,
          toDatacenters,
          trust,
          path,
          intention,
          protocol,
          failover,
          ok: trust.ok && path.ok && intention.ok && protocol.ok && failover.ok,
        });
      }
    }
  }
  return edges;
}

/**
 * The login edge of every Kubernetes secondary. Fails closed: an edge meshform cannot prove is not ok until the
 * cluster's options declare it.
 */
export function checkLogins(manifest: MeshManifest): LoginEdge[] {
  return manifest.federation.flatMap((link) =>
    link.login
      ? [
          {
            from: link.to,
            to: link.from,
            apiServer: link.login.apiServer,
            reach: link.login.reach,
            ok: link.login.reach !== 'unproven',
            note: link.login.note,
            ...(link.login.fix ? { fix: link.login.fix } : {}),
          },
        ]
      : [],
  );
}

/** The check of every mesh of a synthesis. */
export function checkMeshes(meshes: readonly MeshManifest[], store?: SecretStore): CheckDocument {
  const results = meshes.map((m) => ({ mesh: m.mesh, edges: checkMesh(m, store), logins: checkLogins(m) }));
  const broken = results.some((m) => m.edges.some((e) => !e.ok) || m.logins.some((l) => !l.ok));
  return { format: 1, meshes: results, exitCode: broken ? CHECK_EXIT.broken : CHECK_EXIT.ok };
}

function mark(check: EdgeCheck): string {
  return check.ok ? style.green('✓') : style.red('✗');
}

/** The check as a matrix for a terminal, then what to fix. */
export function renderCheck(document: CheckDocument): string {
  const out: string[] = [];
  for (const { mesh, edges, logins } of document.meshes) {
    const broken = edges.filter((e) => !e.ok);
    out.push(
      style.bold(`mesh ${mesh}`) +
        ` — ${edges.length} upstream edge${edges.length === 1 ? '' : 's'}, ${broken.length ? style.red(`${broken.length} broken`) : style.green('all reachable')}`,
    );
    out.push(...renderLogins(logins));
    if (edges.length === 0) {
      out.push('  no upstream declared (addUpstream): nothing to check', '');
      continue;
    }
    const label = (e: Edge) =>
      `${e.from}@${e.fromDatacenter} → ${e.to}${e.toDatacenters.length ? `@${e.toDatacenters.join('|')}` : ''}`;
    const width = Math.max(4, ...edges.map((e) => label(e).length));
    out.push(`  ${'edge'.padEnd(width)}  trust  path  intention  protocol  failover`);
    for (const e of edges) {
      out.push(
        `  ${label(e).padEnd(width)}  ${mark(e.trust)}      ${mark(e.path)}     ${mark(e.intention)}          ${mark(e.protocol)}         ${mark(e.failover)}`,
      );
    }
    out.push('');
    for (const e of edges) {
      out.push(`  ${e.ok ? style.green('ok') : style.red('BROKEN')} ${label(e)}`);
      for (const [name, check] of [
        ['trust', e.trust],
        ['path', e.path],
        ['intention', e.intention],
        ['protocol', e.protocol],
        ['failover', e.failover],
      ] as const) {
        out.push(
          `      ${name.padEnd(9)} ${check.note}${check.ok || !check.fix ? '' : style.yellow(` — fix: ${check.fix}`)}`,
        );
      }
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

/** The federation logins of a mesh: one line each, then what to do about the unproven ones. */
function renderLogins(logins: readonly LoginEdge[]): string[] {
  if (logins.length === 0) return [];
  const unproven = logins.filter((l) => !l.ok);
  return [
    `  federation logins (the primary's servers → each Kubernetes secondary's API server): ${
      unproven.length ? style.red(`${unproven.length} unproven`) : style.green('all admitted')
    }`,
    ...logins.map(
      (l) =>
        `  ${l.ok ? style.green('ok') : style.red('UNPROVEN')} ${l.from} → ${l.to} (${l.apiServer}): ${l.note}${
          l.ok || !l.fix ? '' : style.yellow(` — fix: ${l.fix}`)
        }`,
    ),
    '',
  ];
}
