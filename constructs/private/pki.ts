import { randomBytes } from 'node:crypto';

/** A Consul gossip encryption key: 32 random bytes, base64 (what `consul keygen` prints). */
export function createGossipKey(): string {
  return randomBytes(32).toString('base64');
}
