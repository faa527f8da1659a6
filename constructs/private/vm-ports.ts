import { GATEWAY_LISTEN_PORT, SIDECAR_PORT_RANGE } from './vm-node';

/** The security-group role of a VM host (a mesh gateway is its own role). */
export type VmRole = 'server' | 'client' | 'gateway';

/** One port (or range) a role opens to another. */
export interface PortRule {
  readonly port: number;
  readonly toPort?: number;
  readonly protocol: 'tcp' | 'udp';
  readonly what: string;
}

const SERVER_RPC: PortRule = { port: 8300, protocol: 'tcp', what: 'Consul server RPC' };
const LAN_TCP: PortRule = { port: 8301, protocol: 'tcp', what: 'Consul LAN gossip (TCP)' };
const LAN_UDP: PortRule = { port: 8301, protocol: 'udp', what: 'Consul LAN gossip (UDP)' };
// With mesh-gateway federation, a datacenter's servers still gossip directly with each other in the WAN pool;
// only other datacenters' servers are reached through the gateways.
const WAN_TCP: PortRule = {
  port: 8302,
  protocol: 'tcp',
  what: "Consul WAN gossip among the datacenter's servers (TCP)",
};
const WAN_UDP: PortRule = {
  port: 8302,
  protocol: 'udp',
  what: "Consul WAN gossip among the datacenter's servers (UDP)",
};
const WAN_THROUGH_GATEWAY: PortRule = {
  port: 8302,
  protocol: 'tcp',
  what: 'Consul WAN gossip forwarded by the mesh gateway',
};
const GATEWAY: PortRule = { port: GATEWAY_LISTEN_PORT, protocol: 'tcp', what: 'mesh gateway' };
const SIDECARS: PortRule = {
  port: SIDECAR_PORT_RANGE.from,
  toPort: SIDECAR_PORT_RANGE.to,
  protocol: 'tcp',
  what: 'Envoy sidecar mTLS',
};

/**
 * Who may talk to whom inside a VM datacenter: [from, to, ports]. The one table behind the EC2 security
 * groups and the port list of every own-host bundle README.
 */
export const MESH_FLOWS: readonly (readonly [VmRole, VmRole, readonly PortRule[]])[] = [
  ['server', 'server', [SERVER_RPC, LAN_TCP, LAN_UDP, WAN_TCP, WAN_UDP]],
  ['client', 'server', [SERVER_RPC, LAN_TCP, LAN_UDP]],
  ['gateway', 'server', [SERVER_RPC, LAN_TCP, LAN_UDP, WAN_THROUGH_GATEWAY]],
  ['server', 'client', [LAN_TCP, LAN_UDP]],
  ['client', 'client', [LAN_TCP, LAN_UDP, SIDECARS]],
  ['gateway', 'client', [LAN_TCP, LAN_UDP, SIDECARS]],
  ['server', 'gateway', [LAN_TCP, LAN_UDP, GATEWAY]],
  ['client', 'gateway', [LAN_TCP, LAN_UDP, GATEWAY]],
  ['gateway', 'gateway', [LAN_TCP, LAN_UDP]],
];

/** The roles that dial other datacenters' mesh gateways (servers until federation is up, and gateways). */
export const REMOTE_GATEWAY_DIALERS: readonly VmRole[] = ['server', 'gateway'];

/** `8300/tcp`, `21000-21255/tcp`. */
export function portText(rule: PortRule): string {
  return `${rule.port}${rule.toPort !== undefined ? `-${rule.toPort}` : ''}/${rule.protocol}`;
}

const ROLE_NAMES: { readonly [role in VmRole]: string } = {
  server: 'servers',
  client: 'service hosts',
  gateway: 'mesh gateways',
};

/**
 * What a host of `role` must accept, one line per source role (`from servers: 8300/tcp, ...`), from the same
 * table as the security groups.
 */
export function inboundLines(role: VmRole): string[] {
  return MESH_FLOWS.filter(([, to]) => to === role).map(
    ([from, , rules]) => `from ${ROLE_NAMES[from]}: ${rules.map(portText).join(', ')}`,
  );
}
