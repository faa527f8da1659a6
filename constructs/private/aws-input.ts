/** Checks of AWS inputs shared by EKS clusters and EC2 hosts: availability zones, instance types. */
import { errors } from '../errors';

/**
 * The most zones a network meshform creates can span: each zone gets a /4-smaller public and private subnet
 * of the VPC block (indexes 0-7 public, 8-15 private: constructs/private/aws-network.ts).
 */
export const MAX_ZONES = 8;

/**
 * Refuses availability zones that cannot carry the network: not a list, fewer than `min`, more than
 * MAX_ZONES, a repeated zone, or a name that is not a zone of `region` (`<region><letter>`, or a Local Zone
 * `<region>-<zone group>-<n><letter>`).
 */
export function checkAvailabilityZones(path: string, region: string, zones: unknown, min: number): void {
  const fix = `list ${min} to ${MAX_ZONES} distinct zones of ${region}, e.g. ["${region}a", "${region}b"${min > 2 ? `, "${region}c"` : ''}]`;
  if (!Array.isArray(zones)) throw errors.invalidAvailabilityZones(path, zones, 'are not a list', fix);
  if (zones.length < min)
    throw errors.invalidAvailabilityZones(
      path,
      zones,
      `are fewer than ${min}${min > 1 ? ' (EKS needs subnets in two zones)' : ''}`,
      fix,
    );
  if (zones.length > MAX_ZONES)
    throw errors.invalidAvailabilityZones(path, zones, `are more than the ${MAX_ZONES} a VPC is split into`, fix);
  const zone = new RegExp(`^${region.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(-[a-z0-9]+-\\d+)?[a-z]$`);
  for (const z of zones) {
    if (typeof z !== 'string' || !zone.test(z))
      throw errors.invalidAvailabilityZones(path, z, `hold a name that is not a zone of ${region}`, fix);
  }
  const repeated = zones.find((z, i) => zones.indexOf(z) !== i);
  if (repeated !== undefined) throw errors.invalidAvailabilityZones(path, repeated, 'name a zone twice', fix);
}

/** Refuses an EC2 instance type that is not `<family>.<size>` (an empty one included). */
export function checkInstanceType(path: string, what: string, value: unknown): void {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(value))
    throw errors.invalidInstanceType(path, what, value);
}
