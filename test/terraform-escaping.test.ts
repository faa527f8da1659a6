/**
 * User text reaches Terraform through one escaping step (escapeTerraformTemplate / terraformLiteral in
 * constructs/private/engine.ts): `${` and `%{` stay literal, quotes, backslashes and newlines stay data.
 * Hostile strings come from fast-check (seeded, a bounded number), many to one stack, so that one
 * `terraform init` and `terraform plan` check them all; Terraform's own reading is the judge
 * (`terraform show -json` of the plan). Stacks of the Kubernetes and Helm providers (not in the offline mirror)
 * are checked by Terraform's template rule on the synthesized JSON (hashicorp/hcl v2 hclsyntax spec.md,
 * "Template Literals": `$${` and `%%{` are the literal `${` and `%{`; any other `${` or `%{` opens a template).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { reconcileMeshCa } from '../cli/ca';
import { secretVariables } from '../cli/secrets';
import { readSynthOutput } from '../cli/synth';
import { pool, StackWorkspace, stackProviders, terraformAvailability, variableEnvironment } from '../cli/terraform';
import {
  App,
  escapeTerraformTemplate,
  Fn,
  TerraformLocal,
  terraformLiteral,
  TerraformOutput,
  TerraformStack,
} from '../constructs/private/engine';
import {
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  Mesh,
  SecretStore,
  Service,
  ServiceProtocol,
  VmDatacenter,
} from '../index';
import { awsVmHosts, synth, tempDir } from './support';

const available = terraformAvailability({ offline: true });

/** The pieces attackers and accidents use: templates, directives, escapes, quotes, line breaks, non-ASCII. */
const PIECES = [
  '${path.cwd}',
  '%{ if true }x%{ endif }',
  '${',
  '%{',
  '$${',
  '%%{',
  '$$${',
  '$',
  '%',
  '}',
  '"',
  "'",
  '\\',
  '\\"',
  '\n',
  '\r\n',
  '\t',
  'é',
  '🚀',
  '\u2028',
  '<<EOT',
  '#',
  '//',
];

/** Hostile strings: pieces and arbitrary unicode in any order, ending anywhere (a trailing `$` or `%` too). */
const hostile = fc
  .array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ unit: 'grapheme', maxLength: 6 })), {
    minLength: 1,
    maxLength: 8,
  })
  .map((parts) => parts.join(''));

/** The same strings every run: seeded, with the named cases first. */
function hostileStrings(count: number, seed: number): string[] {
  const fixed = ['${path.cwd}', '%{ if true }x%{ endif }', 'Service.Meta.version == "1.8"', '$${', 'a$', 'b%', '\\'];
  return [...fixed, ...fc.sample(hostile, { numRuns: count, seed })];
}

/**
 * Terraform's reading of a literal template (no live sequence in it): `$${` → `${`, `%%{` → `%{`, and the
 * text in Unicode NFC (HCL normalizes every string it reads: hashicorp/hcl v2 hclsyntax spec.md, "String
 * Literals" and json/spec.md; seen here as combining marks planned composed).
 */
function terraformUnescape(text: string): string {
  return text
    .replace(/\$\$\{/g, '${')
    .replace(/%%\{/g, '%{')
    .normalize('NFC');
}

/** A value as Terraform plans it: its strings (and keys) in Unicode NFC. */
function nfc<T>(value: T): T {
  return JSON.parse(JSON.stringify(value).normalize('NFC')) as T;
}

/** The template sequences Terraform would evaluate in a JSON string: `${` or `%{` not written `$${`/`%%{`. */
function liveTemplates(text: string): string[] {
  const live: string[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith('$${', i) || text.startsWith('%%{', i)) i += 2;
    else if (text.startsWith('${', i) || text.startsWith('%{', i)) live.push(text.slice(i, i + 24));
  }
  return live;
}

/** Every string (and object key) in a JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

/** Runs init, plan and show in a workspace; the parsed `terraform show -json` of the plan. */
async function plan(ws: StackWorkspace): Promise<any> {
  for (const args of [
    ['init', '-no-color', '-input=false'],
    ['plan', '-no-color', '-input=false', '-refresh=false', '-out=plan.tfplan'],
  ]) {
    const r = await ws.run(args);
    if (r.code !== 0) throw new Error(`terraform ${args[0]}: ${r.stdout}${r.stderr}`);
  }
  const show = await ws.run(['show', '-json', 'plan.tfplan']);
  if (show.code !== 0) throw new Error(`terraform show: ${show.stderr}`);
  return JSON.parse(show.stdout);
}

describe('escapeTerraformTemplate', () => {
  it('doubles template openers and leaves cdktf tokens alone', () => {
    expect(escapeTerraformTemplate('a${b}%{c}${TfToken[TOKEN.1]}')).toBe('a$${b}%%{c}${TfToken[TOKEN.1]}');
  });

  it('leaves no live template sequence in any string (property)', () => {
    fc.assert(
      fc.property(hostile, (text) => {
        expect(liveTemplates(escapeTerraformTemplate(text))).toEqual([]);
        expect(terraformUnescape(escapeTerraformTemplate(text))).toBe(text.normalize('NFC'));
      }),
      { seed: 13, numRuns: 500 },
    );
  });
});

describe.skipIf(!available.ok)('hostile text planned by real Terraform equals the input', () => {
  const root = tempDir('meshform-escaping-');
  const texts = hostileStrings(60, 1301);
  let planned: any;

  beforeAll(async () => {
    if (!available.ok) return;
    fs.mkdirSync(path.join(root, 'literal'), { recursive: true });
    // GIVEN hostile strings as outputs: plain, as object keys and values, and through a JSON local into jsonencode
    const app = new App({ outdir: path.join(root, 'literal', 'cdktf.out') });
    const stack = new TerraformStack(app, 'literal');
    texts.forEach((text, i) => new TerraformOutput(stack, `text_${i}`, { value: escapeTerraformTemplate(text) }));
    const data = { list: texts, keyed: Object.fromEntries(texts.map((t, i) => [`${i}:${t}`, t])) };
    new TerraformOutput(stack, 'data', { value: terraformLiteral(data) });
    const local = new TerraformLocal(stack, 'data_local', terraformLiteral(data));
    new TerraformOutput(stack, 'json', { value: Fn.jsonencode(local.expression) });
    app.synth();
    // WHEN Terraform plans it (the built-in provider only: no provider to install)
    const ws = new StackWorkspace(
      path.join(root, 'literal', 'cdktf.out', 'stacks', 'literal'),
      available.env,
      { offline: true },
      path.join(root, 'work'),
    );
    planned = await plan(ws);
  }, 600_000);

  it('plans each string as it was given', () => {
    // THEN every output's planned value is the input, byte for byte
    texts.forEach((text, i) =>
      expect(planned.output_changes[`text_${i}`].after, JSON.stringify(text)).toBe(text.normalize('NFC')),
    );
  });

  it('plans object keys and values, and JSON data passed through a local into jsonencode, as given', () => {
    const data = { list: texts, keyed: Object.fromEntries(texts.map((t, i) => [`${i}:${t}`, t])) };
    expect(planned.output_changes.data.after).toEqual(nfc(data));
    expect(JSON.parse(planned.output_changes.json.after)).toEqual(nfc(data));
  });
});

describe('hostile text in every string prop of a mesh', () => {
  const root = tempDir('meshform-escaping-mesh-');
  const texts = hostileStrings(24, 1302).map((t, i) => `MARK${i}|${t}`);
  const at = (i: number) => texts[i % texts.length]!;
  let out: ReturnType<typeof synth>;

  /** A VM primary on AWS and a Kubernetes secondary by kubeconfig, every free-text prop hostile. */
  function define(app: App): void {
    const mesh = new Mesh(app, 'hx');
    const vms = new VmDatacenter(mesh, 'vms', {
      primary: true,
      meshGateway: { address: 'mgw.vms.example.com' },
      hosts: awsVmHosts(),
    });
    const k8s = new KubernetesDatacenter(mesh, 'k8s', {
      cluster: KubernetesCluster.fromKubeconfig({
        context: at(0),
        path: `/home/${at(1)}/kubeconfig`,
        apiServerUrl: 'https://203.0.113.20',
      }),
      meshGateway: { address: 'mgw.k8s.example.com', serviceAnnotations: { 'example.com/note': at(2) } },
    });
    const db = new Service(mesh, 'db', { port: 5432, protocol: ServiceProtocol.TCP, datacenters: [vms] });
    const api = new Service(mesh, 'api', {
      port: 9090,
      protocol: ServiceProtocol.HTTP,
      datacenters: [vms, k8s],
      subsets: [
        { name: 'v1', filter: 'Service.Meta.version == "1.8"' },
        { name: 'v2', filter: 'Service.Meta.note == "${path.cwd} %{ if }"' },
      ],
      defaultSubset: 'v1',
    });
    const web = new Service(mesh, 'web', { port: 8080, protocol: ServiceProtocol.HTTP, datacenters: [vms, k8s] });
    db.allowFrom(api, { description: at(3) });
    api.allowFrom(web, {
      description: at(4),
      permissions: [
        HttpPermission.allow({
          pathPrefix: `/${at(5)}`,
          headers: [
            { name: 'x-a', exact: at(6) },
            { name: 'x-b', prefix: at(7) },
            { name: 'x-c', suffix: at(8) },
          ],
        }),
      ],
    });
    api.denyFrom(db, { description: at(9) });
    api.addRoute({ match: { headers: [{ name: 'x-canary', exact: at(10) }] }, destination: { subset: 'v2' } });
    web.addUpstream(api);
    api.addUpstream(db);

    // a Kubernetes primary: its config entries become custom resources of the config stack
    const kmesh = new Mesh(app, 'hk');
    const primary = new KubernetesDatacenter(kmesh, 'kp', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: at(11), path: `/k/${at(12)}` }),
      meshGateway: { address: 'mgw.kp.example.com', serviceAnnotations: { 'example.com/a': at(13) } },
    });
    const front = new Service(kmesh, 'front', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [primary] });
    const back = new Service(kmesh, 'back', {
      port: 81,
      protocol: ServiceProtocol.HTTP,
      datacenters: [primary],
      subsets: [{ name: 'v1', filter: 'Service.Meta.note == "${path.cwd}"' }],
    });
    back.allowFrom(front, {
      description: at(14),
      permissions: [HttpPermission.allow({ pathPrefix: `/${at(15)}`, headers: [{ name: 'x-h', exact: at(16) }] })],
    });
    back.addRoute({ match: { headers: [{ name: 'x-r', exact: at(17) }] }, destination: { subset: 'v1' } });
    front.addUpstream(back);
  }

  beforeAll(() => {
    out = synth(define, path.join(root, 'cdktf.out'));
  });

  it('leaves no live template sequence in any string of any stack that holds user text', () => {
    // THEN (JSON contract; the Kubernetes and Helm providers are not in the offline mirror) every string with
    // user text is a literal template, and reads back as what the user wrote
    let seen = 0;
    for (const name of out.stackNames()) {
      for (const text of strings(out.stack(name))) {
        if (!/MARK\d+\||path\.cwd/.test(text)) continue;
        seen++;
        expect(liveTemplates(text), `${name}: ${text.slice(0, 200)}`).toEqual([]);
      }
    }
    expect(seen).toBeGreaterThan(10);
  });

  it('gives the chart values, the kubeconfig and the config-entry manifests the user text as written', () => {
    const k8s = out.stack('hx-k8s') as any;
    const values = parse(terraformUnescape(Object.values(k8s.resource.helm_release as object)[0].values[0]));
    // the chart takes the gateway Service's annotations as a YAML string (consul-k8s v2.0.3 charts/consul/values.yaml)
    expect(parse(values.meshGateway.service.annotations)['example.com/note']).toBe(at(2));
    const provider = k8s.provider.kubernetes[0];
    expect(terraformUnescape(provider.config_context)).toBe(at(0));
    expect(terraformUnescape(provider.config_path)).toBe(`/home/${at(1)}/kubeconfig`);
    // the config entries as custom resources: every hostile string there, as written
    const config = out.stack('hk-kp-config') as any;
    const manifests = Object.values(config.resource.kubernetes_manifest as object).map((r: any) => r.manifest);
    const read = strings(manifests).map(terraformUnescape);
    for (const i of [14, 16, 17]) expect(read, JSON.stringify(at(i))).toContain(at(i).normalize('NFC'));
    expect(read).toContain(`/${at(15)}`.normalize('NFC'));
    expect(read).toContain('Service.Meta.note == "${path.cwd}"');
  });

  it.skipIf(!available.ok)(
    'plans the applied record of the AWS stack (every service, filter, description and match) as meshform wrote it',
    async () => {
      if (!available.ok) return;
      // GIVEN the mesh's secrets, as `meshform secrets env` gives them
      const store = SecretStore.open({ directory: path.join(root, 'store') });
      const mesh = readSynthOutput(out.outdir).meshes.find((m) => m.mesh === 'hx')!;
      store.ensure(mesh.mesh);
      reconcileMeshCa(store, mesh, () => undefined);
      const values = secretVariables(store, [mesh]);
      const stacks = out.stackNames().filter((n) => stackProviders(out.stack(n)).every((p) => p === 'aws'));
      expect(stacks).toContain('hx-vms');
      // WHEN Terraform plans the VM primary's stack
      const [result] = await pool(
        [
          async () => {
            const json = out.stack('hx-vms');
            const ws = new StackWorkspace(
              path.join(out.outdir, 'stacks', 'hx-vms'),
              available.env,
              {
                offline: true,
                pluginCache: process.env.TF_PLUGIN_CACHE_DIR ?? path.join(root, 'plugins'),
                environment: variableEnvironment(json, values),
              },
              path.join(root, 'work'),
            );
            return plan(ws);
          },
        ],
        1,
      );
      // THEN the planned record is the synthesized one read as Terraform reads a literal, and holds the text
      const written = (out.stack('hx-vms') as any).output.meshform_applied.value as string;
      const record = result.output_changes.meshform_applied.after as string;
      expect(record).toBe(terraformUnescape(written));
      const services = JSON.parse(record).manifest.services as any[];
      const api = services.find((s) => s.name === 'api');
      expect(api.subsets.map((s: any) => s.filter)).toEqual([
        'Service.Meta.version == "1.8"',
        'Service.Meta.note == "${path.cwd} %{ if }"',
      ]);
      expect(api.intentions.map((i: any) => i.description)).toEqual(nfc([at(4), at(9)]));
      expect(JSON.stringify(api.intentions)).toContain(nfc(JSON.stringify(`/${at(5)}`)));
      for (const i of [6, 7, 8, 10]) expect(record).toContain(nfc(JSON.stringify(at(i))));
    },
    600_000,
  );
});
