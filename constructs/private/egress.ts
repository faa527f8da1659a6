/*
 * What stacks need to know of a datacenter's egress: the NAT tag and the datacenter whose addresses a stack
 * looks up. Stacks import this file, so it imports no public construct (constructs build stacks, never the
 * reverse): the constructs' side, which inspects clusters and hosts, is federation-reach.ts.
 */
import { EGRESS_TAG as NAT_EGRESS_TAG } from './aws-network';
import type { TerraformStack } from './engine';

/**
 * Tag (with value `nat`) on the Elastic IP of every NAT gateway of a network meshform creates (AwsNetwork): the
 * addresses the network's hosts and pods reach the internet from. Found by this tag and the provider default tags
 * `meshform:mesh` / `meshform:datacenter`, so no stack reads another's state.
 */
export const EGRESS_TAG = NAT_EGRESS_TAG.key;
export const EGRESS_NAT = NAT_EGRESS_TAG.value;

/** A datacenter whose servers leave their network through NAT gateways meshform creates. */
export interface MeshformEgress {
  /** The datacenter. */
  readonly datacenter: string;
  /** AWS region of its network. */
  readonly region: string;
  /** The stack that creates the network's NAT gateways (stacks that look the addresses up deploy after it). */
  readonly stack: TerraformStack;
}
