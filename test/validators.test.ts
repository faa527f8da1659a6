import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { checkAgentConfigKeys } from '../constructs/private/agent-config-keys';
import { parseHcl } from '../constructs/private/hcl';
import { EXAMPLES } from '../examples';
import { synth, tempDir } from './support';

/** Whether a command exists here; when not, the suites below skip with this reason printed. */
function tool(command: string, args: string[]): string | undefined {
  const probe = spawnSync(command, args, { encoding: 'utf8' });
  return probe.error ? `${command} not found on this machine` : undefined;
}

const NO_CLOUD_INIT = tool('cloud-init', ['--version']);
const NO_SYSTEMD_ANALYZE = tool('systemd-analyze', ['--version']);
if (NO_CLOUD_INIT) console.warn(`skipping cloud-init schema checks: ${NO_CLOUD_INIT}`);
if (NO_SYSTEMD_ANALYZE) console.warn(`skipping systemd-analyze checks: ${NO_SYSTEMD_ANALYZE}`);

/** Every example's synthesized output, once. */
const outputs = EXAMPLES.map((example) => ({ name: example.name, files: synth(example.define).files() }));

function filesMatching(pattern: RegExp): { example: string; file: string; content: string }[] {
  return outputs.flatMap(({ name, files }) =>
    [...files].filter(([file]) => pattern.test(file)).map(([file, content]) => ({ example: name, file, content })),
  );
}

/**
 * The top-level keys cloud-init's own schema defines (`cloud-init schema` does not reject unknown keys by
 * itself), read with the interpreter cloud-init itself runs on.
 */
function cloudInitTopLevelKeys(): Set<string> {
  const which = spawnSync('sh', ['-c', 'command -v cloud-init'], { encoding: 'utf8' }).stdout.trim();
  const interpreter = fs
    .readFileSync(which, 'utf8')
    .split('\n')[0]!
    .replace(/^#!\s*/, '')
    .split(' ')[0]!;
  const found = spawnSync(
    interpreter,
    [
      '-c',
      'import cloudinit.config.schema as s, json\n' +
        'sc = s.get_schema()\n' +
        'keys = set(sc.get("properties", {}))\n' +
        'for part in sc.get("allOf", []):\n' +
        '    keys |= set(sc["$defs"][part["$ref"].split("/")[-1]].get("properties", {}))\n' +
        'print(json.dumps(sorted(keys)))',
    ],
    {
      encoding: 'utf8',
    },
  );
  if (found.status !== 0) throw new Error(`cannot read cloud-init's schema with ${interpreter}: ${found.stderr}`);
  return new Set(JSON.parse(found.stdout) as string[]);
}

describe('cloud-init documents', () => {
  const documents = filesMatching(/cloud-init\.yaml$/);

  it('exist for every EC2 host group of the examples', () => {
    expect(documents.map((d) => `${d.example}:${d.file}`).sort()).toEqual([
      'default:stacks/shop-aws-vms/hosts/mesh-gateway/cloud-init.yaml',
      'default:stacks/shop-aws-vms/hosts/server/cloud-init.yaml',
      'default:stacks/shop-aws-vms/hosts/service-db/cloud-init.yaml',
      'hybrid:stacks/bank-vms/hosts/mesh-gateway/cloud-init.yaml',
      'hybrid:stacks/bank-vms/hosts/server/cloud-init.yaml',
      'hybrid:stacks/bank-vms/hosts/service-ledger/cloud-init.yaml',
    ]);
  });

  it.skipIf(NO_CLOUD_INIT)('pass `cloud-init schema`, with only keys cloud-init defines', () => {
    const known = cloudInitTopLevelKeys();
    const dir = tempDir('meshform-cloud-init-');
    for (const doc of documents) {
      const file = path.join(dir, `${doc.example}-${doc.file.replace(/\//g, '_')}`);
      fs.writeFileSync(file, doc.content);
      const result = spawnSync('cloud-init', ['schema', '-c', file], { encoding: 'utf8' });
      expect(`${result.stdout}${result.stderr}`.trim(), doc.file).toBe(`Valid cloud-config: ${file}`);
      expect(result.status, doc.file).toBe(0);
      const keys = Object.keys(parse(doc.content) as object);
      expect(
        keys.filter((k) => !known.has(k)),
        doc.file,
      ).toEqual([]);
      expect(known.has('write_files') && known.has('runcmd') && known.has('users')).toBe(true);
    }
  });
});

describe('systemd units', () => {
  // services and the timers that start them, verified together per host
  const units = filesMatching(/\.(service|timer)$/);

  it('exist for hosts and bundles', () => {
    expect(units.length).toBeGreaterThan(20);
    expect(units.some((u) => u.file.startsWith('bundles/'))).toBe(true);
    expect(units.some((u) => u.file.endsWith('/meshform-acl-bootstrap.timer'))).toBe(true);
  });

  it.skipIf(NO_SYSTEMD_ANALYZE)(
    'pass `systemd-analyze verify` (ignoring only binaries absent from this machine)',
    () => {
      const dir = tempDir('meshform-units-');
      // A host's units are verified together, as systemd loads them (they require one another).
      const hosts = new Map<string, typeof units>();
      for (const u of units) {
        const host = `${u.example}/${path.dirname(u.file)}`;
        hosts.set(host, [...(hosts.get(host) ?? []), u]);
      }
      let n = 0;
      for (const [host, hostUnits] of hosts) {
        const unitDir = path.join(dir, String(n++));
        fs.mkdirSync(unitDir, { recursive: true });
        for (const u of hostUnits) fs.writeFileSync(path.join(unitDir, path.basename(u.file)), u.content);
        const result = spawnSync(
          'systemd-analyze',
          ['verify', ...hostUnits.map((u) => path.join(unitDir, path.basename(u.file)))],
          {
            encoding: 'utf8',
            env: { ...process.env, SYSTEMD_UNIT_PATH: `${unitDir}:` },
          },
        );
        const problems = `${result.stdout}${result.stderr}`
          .split('\n')
          .filter((l) => l.trim() !== '')
          .filter((l) => !/Command \/usr\/local\/(s?bin)\/\S+ is not executable: No such file or directory/.test(l));
        expect(problems, host).toEqual([]);
      }
      expect(n).toBeGreaterThanOrEqual(11);
    },
  );
});

describe('agent configuration (HCL)', () => {
  /** Every consul.hcl: bundle files, and the ones embedded in cloud-init documents. */
  const configs = [
    ...filesMatching(/files\/etc\/consul\.d\/consul\.hcl$/),
    ...filesMatching(/cloud-init\.yaml$/).map((doc) => {
      const parsed = parse(doc.content) as { write_files: { path: string; content: string }[] };
      const entry = parsed.write_files.find((f) => f.path === '/etc/consul.d/consul.hcl')!;
      return { ...doc, content: entry.content };
    }),
  ];

  it('parses back with hcl2-parser and uses only keys Consul accepts, none deprecated', () => {
    expect(configs.length).toBeGreaterThanOrEqual(11);
    for (const config of configs) {
      const parsed = parseHcl(config.content);
      expect(parsed.datacenter, config.file).toBeTypeOf('string');
      expect(checkAgentConfigKeys(parsed), config.file).toEqual([]);
    }
  });

  it('writes out every security setting on servers and clients', () => {
    for (const config of configs) {
      const parsed = parseHcl(config.content) as any;
      expect(parsed.acl, config.file).toMatchObject({ enabled: true, default_policy: 'deny' });
      expect(parsed.tls.defaults, config.file).toMatchObject({ verify_incoming: true, verify_outgoing: true });
      expect(parsed.tls.internal_rpc, config.file).toMatchObject({ verify_server_hostname: true });
      expect(parsed, config.file).toMatchObject({ encrypt_verify_incoming: true, encrypt_verify_outgoing: true });
      expect(parsed.auto_encrypt, config.file).toEqual(parsed.server ? { allow_tls: true } : { tls: true });
      expect(parsed.ports.http, config.file).toBe(-1);
      if (parsed.server) expect([3, 5], config.file).toContain(parsed.bootstrap_expect);
    }
  });
});
