import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { App } from '../constructs/private/engine';
import { normalize, parseHcl, renderHcl } from '../constructs/private/hcl';
import { Service, VmDatacenter } from '../index';
import { awsVmHosts, kubernetesPrimary, synth, tempDir, thrownMessage } from './support';

/** GIVEN helper: a mesh with an AWS VM datacenter reading `extra` as its extra agent config file. */
function withExtra(extraFile: string | undefined) {
  return (app: App) => {
    const mesh = kubernetesPrimary(app);
    const vms = new VmDatacenter(mesh, 'vms', { hosts: awsVmHosts(), extraAgentConfigFile: extraFile });
    new Service(mesh, 'api', { port: 8080, datacenters: [vms] });
  };
}

function writeHcl(text: string): string {
  const file = path.join(tempDir('meshform-hcl-'), 'extra.hcl');
  fs.writeFileSync(file, text);
  return file;
}

/** The agent config of a host group, read back from its cloud-init document. */
function agentConfigOf(files: Map<string, string>, group: string): any {
  const doc = parse(files.get(`stacks/m-vms/hosts/${group}/cloud-init.yaml`)!) as {
    write_files: { path: string; content: string }[];
  };
  return parseHcl(doc.write_files.find((f) => f.path === '/etc/consul.d/consul.hcl')!.content);
}

describe('HCL rendering', () => {
  it('round-trips through hcl2-parser', () => {
    const config = {
      datacenter: 'dc1',
      retry_join: ['provider=aws tag_key=k tag_value=v'],
      ports: { https: 8501, http: -1 },
      node_meta: { 'rack-id': 'r1' },
      config_entries: { bootstrap: [{ kind: 'proxy-defaults', name: 'global', config: { protocol: 'http' } }] },
    };
    expect(parseHcl(renderHcl(config))).toEqual(normalize(config));
  });

  it('refuses strings that HCL 1 and 2 would read differently', () => {
    expect(() => renderHcl({ x: 'a ${b}' })).toThrow(
      'a string with a template sequence cannot be written for both HCL 1 and 2: "a ${b}"',
    );
  });

  it('wraps hcl2-parser: bad input is an error, not an empty result', () => {
    expect(() => parseHcl('acl { enabled = ')).toThrow('not valid HCL');
    expect(() => parseHcl('this is { not hcl')).toThrow('not valid HCL');
  });
});

describe('extra agent configuration', () => {
  it('is parsed, checked and merged into every agent', () => {
    // GIVEN
    const file = writeHcl(
      'log_level = "DEBUG"\nnode_meta {\n  team = "payments"\n}\ntelemetry {\n  statsd_address = "127.0.0.1:8125"\n}\n',
    );
    // WHEN
    const files = synth(withExtra(file)).files();
    // THEN
    for (const group of ['server', 'mesh-gateway', 'service-api']) {
      const config = agentConfigOf(files, group);
      expect(config.log_level).toBe('DEBUG');
      expect(config.node_meta).toEqual({ team: 'payments' });
      expect(config.telemetry).toEqual({
        prometheus_retention_time: '60s',
        disable_hostname: true,
        statsd_address: '127.0.0.1:8125',
      });
      expect(config.acl.default_policy).toBe('deny');
    }
  });

  it('refuses keys Consul does not accept', () => {
    const file = writeHcl('log_levl = "DEBUG"\ntelemetry {\n  statsd_addr = "x"\n}\n');
    expect(thrownMessage(() => synth(withExtra(file)))).toBe(
      `[m/vms] extra agent config ${file} sets keys Consul does not accept: ["log_levl","telemetry.statsd_addr"]. ` +
        "Fix: remove or rename them (see Consul's agent configuration reference)",
    );
  });

  it('refuses keys meshform manages', () => {
    const file = writeHcl('acl {\n  default_policy = "allow"\n}\nencrypt_verify_incoming = false\n');
    expect(thrownMessage(() => synth(withExtra(file)))).toBe(
      `[m/vms] extra agent config ${file} sets keys meshform manages (security, federation, ports, paths): ["acl","encrypt_verify_incoming"]. ` +
        'Fix: remove them; change the topology instead (e.g. servers, meshGateway) where it exposes the setting',
    );
  });

  it('refuses a file that is not HCL, or not there', () => {
    const file = writeHcl('log_level = ');
    expect(thrownMessage(() => synth(withExtra(file)))).toBe(
      `[m/vms] extra agent config is not valid HCL (not valid HCL): ${JSON.stringify(file)}. Fix: fix the HCL syntax (check it with \`consul validate\`)`,
    );
    expect(thrownMessage(() => synth(withExtra('no/such/file.hcl')))).toBe(
      '[m/vms] extra agent config cannot be read (ENOENT): "no/such/file.hcl". Fix: give the path of a readable HCL file, relative to the project root',
    );
  });
});
