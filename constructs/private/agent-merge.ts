import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from '../errors';
import { checkAgentConfigKeys } from './agent-config-keys';
import { HclObject, HclSyntaxError, isObject, parseHcl } from './hcl';

/**
 * Keys meshform owns in every agent's configuration: security (ACL, TLS, gossip), federation, identity,
 * ports and paths. Extra agent configuration may not set them (nor anything below them).
 */
const MANAGED = [
  'acl',
  'tls',
  'auto_encrypt',
  'encrypt',
  'encrypt_verify_incoming',
  'encrypt_verify_outgoing',
  'verify_incoming',
  'verify_incoming_rpc',
  'verify_incoming_https',
  'verify_outgoing',
  'verify_server_hostname',
  'ca_file',
  'ca_path',
  'cert_file',
  'key_file',
  'ports',
  'addresses',
  'connect',
  'datacenter',
  'primary_datacenter',
  'primary_gateways',
  'server',
  'bootstrap',
  'bootstrap_expect',
  'retry_join',
  'retry_join_wan',
  'start_join',
  'start_join_wan',
  'data_dir',
  'client_addr',
  'bind_addr',
  'advertise_addr',
  'advertise_addr_wan',
  'domain',
];

function managed(key: string): boolean {
  return MANAGED.includes(key) || key.startsWith('acl_');
}

/**
 * Reads extra agent configuration (HCL, relative to the current directory), checks every key against
 * Consul's key tree and refuses keys meshform manages. Errors name the construct path and the file.
 */
export function loadExtraAgentConfig(constructPath: string, file: string): HclObject {
  const resolved = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(resolved, 'utf8');
  } catch (e) {
    throw errors.extraConfigUnreadable(constructPath, file, (e as NodeJS.ErrnoException).code ?? String(e));
  }
  let config: HclObject;
  try {
    config = parseHcl(text);
  } catch (e) {
    if (e instanceof HclSyntaxError) throw errors.extraConfigInvalid(constructPath, file, e.message);
    throw e;
  }
  const unknown = checkAgentConfigKeys(config)
    .filter((p) => p.problem === 'unknown')
    .map((p) => p.path);
  if (unknown.length > 0) throw errors.extraConfigUnknownKeys(constructPath, file, unknown);
  const owned = Object.keys(config).filter(managed).sort();
  if (owned.length > 0) throw errors.extraConfigManagedKeys(constructPath, file, owned);
  return config;
}

/** Deep-merges `extra` into `base`: objects merge key by key, anything else in `extra` replaces `base`. */
export function mergeAgentConfig(base: HclObject, extra: HclObject): HclObject {
  const out: HclObject = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeAgentConfig(current, value) : value;
  }
  return out;
}
