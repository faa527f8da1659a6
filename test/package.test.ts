/**
 * The package as a library user gets it. One `npm pack` (which runs the `prepack` build) and one offline
 * install of the tarball into a fresh app, with its own package.json, tsconfig and cdktf.json, shared by
 * every test below; then what that user runs: tsc (a cdktf-template CommonJS app and an ESM program),
 * `npx cdktf synth`, `npx meshform plan --offline`, `npx meshform check`, and the README's TypeScript.
 *
 * The app pins the lowest versions the package's peer ranges allow (cdktf 0.21.0, constructs 10.4.2, the
 * providers' 20.1.0 / 12.1.2 / 12.1.1); the rest of the suite runs on the highest the repository pins.
 */
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { terraformAvailability } from '../cli/terraform';
import { consumerLockfile, LockEntry, Lockfile, tarballEntry } from './consumer-app';
import { readTree, REPO, tempDir } from './support';

const PACKAGE = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as LockEntry & {
  name: string;
  version: string;
  peerDependencies: { [name: string]: string };
  devDependencies: { [name: string]: string };
};
const LOCK = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as Lockfile;
const TARBALL = `${PACKAGE.name}-${PACKAGE.version}.tgz`;

/** The lowest version of each peer range (`^x.y.z`): what the app installs. */
const LOWEST: { [name: string]: string } = Object.fromEntries(
  Object.entries(PACKAGE.peerDependencies).map(([name, range]) => {
    const m = /^\^(\d+\.\d+\.\d+)$/.exec(range);
    if (!m) throw new Error(`peer range of ${name} is not ^x.y.z: ${range}`);
    return [name, m[1]!];
  }),
);

/**
 * The environment of the user's shell: nothing of the npm script or the repository running this suite
 * (npm_* settings such as its local prefix, the repository's node_modules/.bin on PATH, tsx loaders), and no
 * meshform setting that changes synthesis.
 */
function userEnvironment(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') && !keep.has(k)) continue;
    if (['NODE_OPTIONS', 'INIT_CWD', 'MESHFORM_AWS_ENDPOINT', 'MESHFORM_SECRETS_DIR'].includes(k)) continue;
    if (k.startsWith('VITEST') || k === 'TEST' || k === 'NODE_ENV') continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((p) => !p.startsWith(REPO))
    .join(path.delimiter);
  env.CHECKPOINT_DISABLE = '1';
  env.NO_COLOR = '1';
  env.CI = '1';
  return env;
}

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` in `cwd` as the user would (a shell command line). */
function sh(cwd: string, command: string, env: NodeJS.ProcessEnv = {}): Ran {
  const r: SpawnSyncReturns<string> = spawnSync(command, {
    cwd,
    shell: true,
    encoding: 'utf8',
    env: { ...userEnvironment(), ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Fails with the command's output when it did not exit 0. */
function ok(r: Ran, what: string): Ran {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The two-datacenter mesh of the app: a Kubernetes primary and a secondary of EC2 VMs running `db`. */
const NAMES = [
  'App',
  'GatewayExposure',
  'KubernetesCluster',
  'KubernetesDatacenter',
  'MachineImage',
  'Mesh',
  'Service',
  'ServiceProtocol',
  'VmDatacenter',
  'VmHosts',
  'VmNetwork',
];
const PROGRAM = `import { ${NAMES.join(', ')} } from 'meshform';

const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop');
const east = new KubernetesDatacenter(mesh, 'k8s-east', {
  primary: true,
  cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s-east' }),
  meshGateway: { address: 'mgw.k8s-east.example.com' },
});
const vms = new VmDatacenter(mesh, 'vms', {
  meshGateway: { address: 'mgw.vms.example.com' },
  hosts: VmHosts.onAws({
    region: 'eu-west-1',
    network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
    machineImage: MachineImage.fromId('ami-064cdd2e89aa1b4fb'),
    gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['0.0.0.0/0'] }),
  }),
});
const db = new Service(mesh, 'db', { port: 5432, protocol: ServiceProtocol.TCP, datacenters: [vms] });
const api = new Service(mesh, 'api', { port: 9090, protocol: ServiceProtocol.HTTP, datacenters: [east] });
api.addUpstream(db, { datacenter: vms });
db.allowFrom(api);
app.synth();
`;

/** The tsconfig.json \`cdktf init --template typescript\` writes (CommonJS, Node 10 resolution), emitting to build/. */
const CDKTF_TEMPLATE_TSCONFIG = {
  compilerOptions: {
    alwaysStrict: true,
    declaration: true,
    experimentalDecorators: true,
    inlineSourceMap: true,
    inlineSources: true,
    lib: ['es2018'],
    module: 'CommonJS',
    noEmitOnError: true,
    noFallthroughCasesInSwitch: true,
    noImplicitAny: true,
    noImplicitReturns: true,
    noImplicitThis: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    resolveJsonModule: true,
    strict: true,
    strictNullChecks: true,
    strictPropertyInitialization: true,
    stripInternal: true,
    target: 'ES2018',
    skipLibCheck: true,
    outDir: 'build',
  },
  include: ['main.ts', 'docs/*.ts'],
};

/** An ESM program's tsconfig: Node's own module resolution, which reads the package's `exports`. */
const ESM_TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'ES2022',
    skipLibCheck: true,
    outDir: 'build',
  },
  include: ['main-esm.mts'],
};

/** A TypeScript block of the documentation. */
interface DocBlock {
  /** Where it is, relative to the repository. */
  readonly file: string;
  /** Line of its opening fence. */
  readonly line: number;
  readonly code: string;
}

/**
 * The ```ts blocks of a Markdown file (`comment: false`) or of the doc comments of a source file
 * (`comment: true`, each line's leading `*` removed), with the fence's indentation removed.
 */
export function typescriptBlocks(file: string, text: string, comment: boolean): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = text.split('\n').map((l) => (comment ? l.replace(/^\s*\*( |$)/, '') : l));
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end < 0) throw new Error(`${file}:${i + 1}: a TypeScript block is not closed`);
    const code = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)));
    blocks.push({ file, line: i + 1, code: `${code.join('\n')}\n` });
    i = end;
  }
  return blocks;
}

/** The documentation's TypeScript: the README's blocks and the examples in the public doc comments. */
function documentationBlocks(): DocBlock[] {
  const sources = ['index.ts', 'constructs', 'modules'].flatMap((entry) =>
    entry.endsWith('.ts')
      ? [entry]
      : fs
          .readdirSync(path.join(REPO, entry))
          .filter((f) => f.endsWith('.ts'))
          .map((f) => path.join(entry, f)),
  );
  return [
    ...typescriptBlocks('README.md', fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'), false),
    ...sources.flatMap((f) => typescriptBlocks(f, fs.readFileSync(path.join(REPO, f), 'utf8'), true)),
  ];
}

/**
 * What a fragment (a block with no import of its own) may use without declaring it: every export of the
 * package, and the names the README's examples give the app, the mesh and the default example's datacenters.
 */
const FRAGMENT_CONTEXT: { readonly [name: string]: string } = {
  app: 'App',
  mesh: 'Mesh',
  east: 'KubernetesDatacenter',
  west: 'KubernetesDatacenter',
  vms: 'VmDatacenter',
};

/** The file of the app a documentation block is compiled as. */
function docFile(block: DocBlock): string {
  return `${block.file.replace(/[^\w]+/g, '-')}-${block.line}.ts`;
}

/**
 * The one-line prelude of a block: for a program (it has imports), only where it comes from; for a fragment,
 * an import of the package's exports it uses and a declaration of the context names it uses undeclared.
 */
function prelude(block: DocBlock, exported: readonly string[]): string {
  const uses = (name: string) => new RegExp(`\\b${name}\\b`).test(block.code);
  const declares = (name: string) => new RegExp(`\\b(const|let|var|function|class)\\s+${name}\\b`).test(block.code);
  if (/^import\b/m.test(block.code)) return `// ${block.file}:${block.line}`;
  const context = Object.entries(FRAGMENT_CONTEXT).filter(([name]) => uses(name) && !declares(name));
  const imported = exported.filter((n) => uses(n) || context.some(([, type]) => type === n));
  // (`export {}`: a module of its own even when it imports nothing, so fragments never share a scope)
  return [
    ...(imported.length > 0 ? [`import { ${imported.join(', ')} } from 'meshform';`] : []),
    ...(context.length > 0 ? [`declare const ${context.map(([n, t]) => `${n}: ${t}`).join(', ')};`] : []),
    'export {};',
  ].join(' ');
}

/** tsc's output with each error in a documentation block reported at its line in the documentation. */
function atDocumentationLines(output: string, blocks: readonly DocBlock[]): string {
  const byFile = new Map(blocks.map((b) => [docFile(b), b]));
  return output.replace(/^docs\/([\w-]+\.ts)\((\d+),(\d+)\)/gm, (all, name: string, line: string, column: string) => {
    const block = byFile.get(name);
    return block ? `${block.file}:${block.line + Number(line) - 1}:${column}` : all;
  });
}

interface Consumer {
  /** The directory holding the tarball and the app. */
  readonly root: string;
  readonly app: string;
  readonly tarball: string;
  readonly pack: Ran;
  readonly install: Ran;
  /** The documentation's TypeScript blocks, written to docs/ in the app. */
  readonly docs: readonly DocBlock[];
}

/** Packs the repository and installs the tarball offline into a fresh app. */
function installConsumer(): Consumer {
  const root = tempDir('meshform-consumer-');
  const pack = ok(sh(REPO, `npm pack --pack-destination ${JSON.stringify(root)}`), 'npm pack');
  const tarball = path.join(root, TARBALL);
  const app = path.join(root, 'app');
  fs.mkdirSync(app);
  const manifest = {
    name: 'meshform-consumer',
    version: '1.0.0',
    private: true,
    dependencies: { meshform: `file:../${TARBALL}`, ...LOWEST },
    devDependencies: Object.fromEntries(
      ['cdktf-cli', 'typescript', '@types/node'].map((n) => [n, PACKAGE.devDependencies[n]!]),
    ),
  };
  const lowestConstructs = `npm:constructs@${LOWEST.constructs}`;
  const alias = Object.keys(PACKAGE.devDependencies).find((n) => PACKAGE.devDependencies[n] === lowestConstructs);
  if (!alias) throw new Error(`package.json has no devDependency alias ${lowestConstructs}: npm ci would not cache it`);
  const lock = consumerLockfile(LOCK, manifest, {
    'node_modules/constructs': LOCK.packages[`node_modules/${alias}`]!,
    'node_modules/meshform': tarballEntry(tarball, `../${TARBALL}`, PACKAGE),
  });
  fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  fs.writeFileSync(path.join(app, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  fs.writeFileSync(path.join(app, 'tsconfig.json'), `${JSON.stringify(CDKTF_TEMPLATE_TSCONFIG, null, 2)}\n`);
  fs.writeFileSync(path.join(app, 'tsconfig.esm.json'), `${JSON.stringify(ESM_TSCONFIG, null, 2)}\n`);
  fs.writeFileSync(
    path.join(app, 'cdktf.json'),
    `${JSON.stringify({ language: 'typescript', app: 'node build/main.js', sendCrashReports: 'false' }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(app, 'main.ts'), PROGRAM);
  fs.writeFileSync(path.join(app, 'main-esm.mts'), PROGRAM);
  const install = ok(sh(app, 'npm ci --offline --ignore-scripts --no-audit --no-fund'), 'npm ci --offline');
  // the documentation's TypeScript, as files of the app (fragments may use every export of the package)
  const exported = [
    ...fs
      .readFileSync(path.join(app, 'node_modules/meshform/dist/index.mjs'), 'utf8')
      .matchAll(/^export const (\w+) =/gm),
  ].map((m) => m[1]!);
  const docs = documentationBlocks();
  fs.mkdirSync(path.join(app, 'docs'));
  for (const block of docs)
    fs.writeFileSync(path.join(app, 'docs', docFile(block)), `${prelude(block, exported)}\n${block.code}`);
  return { root, app, tarball, pack, install, docs };
}

describe('the packed meshform package in a fresh cdktf app', () => {
  let consumer: Consumer;
  beforeAll(() => {
    consumer = installConsumer();
  }, 900_000);
  /** `tsc -p tsconfig.json` of the app (main.ts and the documentation's blocks), run once. */
  let commonJs: Ran | undefined;
  const compileCommonJs = (): Ran => (commonJs ??= sh(consumer.app, 'npx tsc -p tsconfig.json'));

  it('packs the compiled build with its types, ESM entry, on-host agent, data, bin and license, and no sources', () => {
    // GIVEN the tarball `npm pack` wrote (its `prepack` ran the build)
    const files = ok(sh(consumer.root, `tar -tzf ${JSON.stringify(consumer.tarball)}`), 'tar')
      .stdout.split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    const manifest = JSON.parse(
      ok(sh(consumer.root, `tar -xzOf ${JSON.stringify(consumer.tarball)} package/package.json`), 'tar').stdout,
    ) as { private?: boolean; exports: unknown; dependencies: object; peerDependencies: object; bin: object };
    // THEN it holds what the runtime reads, and nothing of the repository's sources, tests or examples
    expect(files).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'README.md',
        'package.json',
        'bin/meshform.js',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/index.mjs',
        'dist/index.d.mts',
        'dist/cli/main.js',
        'dist/constructs/private/assets/meshform-node.py',
        'dist/constructs/private/data/consul-agent-config-keys.json',
      ]),
    );
    expect(files.filter((f) => /\.ts$/.test(f) && !/\.d\.m?ts$/.test(f))).toEqual([]);
    expect(
      files.filter((f) => /^(test|examples|scripts|\.ci)\//.test(f) || /^dist\/(test|examples|scripts)\//.test(f)),
    ).toEqual([]);
    // the packed agent is the repository's, byte for byte
    const packedAgent = ok(
      sh(
        consumer.root,
        `tar -xzOf ${JSON.stringify(consumer.tarball)} package/dist/constructs/private/assets/meshform-node.py`,
      ),
      'tar',
    ).stdout;
    expect(packedAgent).toBe(fs.readFileSync(path.join(REPO, 'constructs/private/assets/meshform-node.py'), 'utf8'));
    // a publishable manifest: not private, both entry points typed, cdktf and friends as peers only
    expect(manifest.private).toBeUndefined();
    expect(manifest.exports).toEqual({
      '.': {
        import: { types: './dist/index.d.mts', default: './dist/index.mjs' },
        require: { types: './dist/index.d.ts', default: './dist/index.js' },
      },
      './package.json': './package.json',
    });
    expect(manifest.bin).toEqual({ meshform: 'bin/meshform.js' });
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['commander', 'hcl2-parser', 'node-forge', 'yaml']);
    expect(manifest.peerDependencies).toEqual({
      '@cdktf/provider-aws': '^20.1.0',
      '@cdktf/provider-helm': '^12.1.2',
      '@cdktf/provider-kubernetes': '^12.1.1',
      cdktf: '^0.21.0',
      constructs: '^10.4.2',
    });
  });

  it('installs from the npm cache alone into a valid tree: one cdktf and one constructs (the app’s), no tsx', () => {
    const modules = path.join(consumer.app, 'node_modules');
    // THEN npm itself finds every dependency and peer range satisfied
    ok(sh(consumer.app, 'npm ls --all --offline'), 'npm ls --all');
    // and meshform brought no copy of its own of a peer (the source of "separate declarations of a private
    // property" errors in an app on another cdktf)
    for (const peer of Object.keys(PACKAGE.peerDependencies))
      expect(fs.existsSync(path.join(modules, 'meshform', 'node_modules', peer)), peer).toBe(false);
    const version = (name: string) =>
      (JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8')) as { version: string }).version;
    expect(version('cdktf')).toBe(LOWEST.cdktf);
    expect(version('constructs')).toBe(LOWEST.constructs);
    expect(version('@cdktf/provider-aws')).toBe(LOWEST['@cdktf/provider-aws']);
    // no TypeScript runtime: the bin runs compiled JavaScript
    expect(fs.existsSync(path.join(modules, 'tsx'))).toBe(false);
    expect(fs.existsSync(path.join(modules, 'ts-node'))).toBe(false);
  });

  it('type-checks and compiles a CommonJS app (the cdktf template tsconfig) and an ESM program importing from meshform', () => {
    // WHEN the user compiles the app both ways
    const cjs = compileCommonJs();
    const esm = sh(consumer.app, 'npx tsc -p tsconfig.esm.json');
    // THEN both compile without an error
    expect(atDocumentationLines(cjs.stdout + cjs.stderr, consumer.docs)).toBe('');
    expect(cjs.code).toBe(0);
    expect(esm.stdout + esm.stderr).toBe('');
    expect(esm.code).toBe(0);
    // and the CommonJS build requires the package while the ESM one imports it
    expect(fs.readFileSync(path.join(consumer.app, 'build', 'main.js'), 'utf8')).toContain('require("meshform")');
    expect(fs.readFileSync(path.join(consumer.app, 'build', 'main-esm.mjs'), 'utf8')).toContain("from 'meshform'");
  });

  it('synthesizes the Kubernetes and VM datacenters with `npx cdktf synth`; the VM hosts carry the packaged agent', () => {
    // WHEN
    const synth = sh(consumer.app, 'npx cdktf synth');
    // THEN
    expect(synth.code, synth.stderr).toBe(0);
    const out = path.join(consumer.app, 'cdktf.out');
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      stacks: { [name: string]: { dependencies: string[] } };
    };
    expect(Object.keys(manifest.stacks).sort()).toEqual(['shop-k8s-east', 'shop-k8s-east-config', 'shop-vms']);
    expect(manifest.stacks['shop-vms']!.dependencies).toContain('shop-k8s-east');
    const vmStack = JSON.parse(fs.readFileSync(path.join(out, 'stacks', 'shop-vms', 'cdk.tf.json'), 'utf8')) as {
      resource: { [type: string]: object };
    };
    expect(Object.keys(vmStack.resource.aws_instance ?? {}).length).toBeGreaterThanOrEqual(3);
    // every host group's cloud-init installs meshform-node as the package ships it (dist/, not the sources)
    const agent = fs.readFileSync(
      path.join(consumer.app, 'node_modules/meshform/dist/constructs/private/assets/meshform-node.py'),
      'utf8',
    );
    const groups = fs.readdirSync(path.join(out, 'stacks', 'shop-vms', 'hosts')).sort();
    expect(groups).toEqual(['mesh-gateway', 'server', 'service-db']);
    for (const group of groups) {
      const cloudInit = parse(
        fs.readFileSync(path.join(out, 'stacks', 'shop-vms', 'hosts', group, 'cloud-init.yaml'), 'utf8'),
      ) as { write_files: { path: string; content: string }[] };
      const node = cloudInit.write_files.find((f) => f.path === '/usr/local/sbin/meshform-node');
      expect(node?.content, group).toBe(agent);
    }
  });

  it('synthesizes the same stacks from the ESM program', () => {
    // GIVEN the stacks `cdktf synth` wrote from the CommonJS build
    const esmOut = path.join(consumer.root, 'esm.out');
    // WHEN the ESM build runs
    ok(sh(consumer.app, 'node build/main-esm.mjs', { CDKTF_OUTDIR: esmOut }), 'node build/main-esm.mjs');
    // THEN it writes the same stacks, byte for byte
    const cjs = readTree(path.join(consumer.app, 'cdktf.out', 'stacks'));
    const esm = readTree(path.join(esmOut, 'stacks'));
    expect([...esm.keys()]).toEqual([...cjs.keys()]);
    for (const [file, content] of cjs) expect(esm.get(file), file).toBe(content);
  });

  it('plans offline with `npx meshform plan --offline`, awaiting the plan to its exit code', () => {
    const terraform = terraformAvailability({ offline: true });
    // WHEN
    const plan = sh(consumer.app, 'npx meshform plan --offline');
    // THEN the plan completes: exit 0, the mesh in mesh terms, each stack planned or said why not, no gate
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('mesh shop — compared with nothing applied yet: everything is to create');
    expect(plan.stdout).toContain('  + datacenter vms: vm on other, 3 servers, gateway mgw.vms.example.com:443');
    expect(plan.stdout).toContain('  + federation vms → k8s-east via mgw.k8s-east.example.com:443');
    expect(plan.stdout).toContain('Gates\n  ✓ none fired');
    expect(plan.stdout).toContain('Picture: cdktf.out/meshform/plan/shop.svg');
    expect(fs.existsSync(path.join(consumer.app, 'cdktf.out', 'meshform', 'plan', 'shop.svg'))).toBe(true);
    expect(plan.stdout).toMatch(
      /shop-k8s-east +skipped: offline: provider hashicorp\/helm, hashicorp\/kubernetes is not in the local provider mirror/,
    );
    if (terraform.ok) {
      // a real terraform plan of the VM stack, from the provider mirror
      expect(plan.stdout).toMatch(/shop-vms +\d+ to create, 0 to update, 0 to replace, 0 to destroy/);
    } else {
      expect(plan.stdout).toContain(terraform.reason);
    }
  });

  it('proves every upstream with `npx meshform check`', () => {
    const check = sh(consumer.app, 'npx meshform check');
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain('mesh shop — 1 upstream edge, all reachable');
    expect(check.stdout).toMatch(/ok api@k8s-east → db@vms\n\s+trust +verified: chains of k8s-east, vms under root-1/);
  });

  it('reports errors with their exit code and no stack trace, for synchronous and awaited commands', () => {
    // GIVEN a project whose app fails to synthesize
    const broken = path.join(consumer.root, 'broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(
      path.join(broken, 'cdktf.json'),
      JSON.stringify({ app: 'node -e "console.error(\'boom\'); process.exit(7)"' }),
    );
    // WHEN plan (asynchronous) and synth (synchronous) run there, and an unknown command runs
    const plan = sh(consumer.app, `npx meshform plan --offline --project ${JSON.stringify(broken)}`);
    const synth = sh(consumer.app, `npx meshform synth --project ${JSON.stringify(broken)}`);
    const unknown = sh(consumer.app, 'npx meshform frobnicate');
    // THEN each says what failed after `meshform: error:` (no stack trace) and exits non-zero
    for (const r of [plan, synth]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^meshform: error: synthesis failed \(node -e .*\); nothing was written:\nboom$/m);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^meshform: error: unknown command "frobnicate"/);
  });

  it('names the missing peer dependency and the command that installs them all', () => {
    // GIVEN an app whose cdktf is gone
    const cdktf = path.join(consumer.app, 'node_modules', 'cdktf');
    const away = path.join(consumer.root, 'cdktf-away');
    fs.renameSync(cdktf, away);
    try {
      // WHEN meshform runs
      const r = sh(consumer.app, 'npx meshform check');
      // THEN it says which peer is missing and how to install the peers, in one line, exit 1
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        'meshform: error: meshform needs its peer dependency cdktf, which is not installed: npm install ' +
          `${Object.entries(PACKAGE.peerDependencies)
            .map(([n, v]) => `${n}@${v}`)
            .join(' ')}\n`,
      );
    } finally {
      fs.renameSync(away, cdktf);
    }
  });

  it('type-checks every TypeScript block of the README and of the public doc comments against the package', () => {
    // GIVEN every block, as a file of the app (programs as they are, fragments after a one-line prelude)
    expect(consumer.docs.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(5);
    expect(consumer.docs.some((b) => b.file === path.join('constructs', 'mesh.ts'))).toBe(true);
    // WHEN the user's compiler checks them against the installed package (the cdktf template's settings)
    const tsc = compileCommonJs();
    // THEN none has an error (reported at its line in the documentation)
    expect(atDocumentationLines(tsc.stdout + tsc.stderr, consumer.docs)).toBe('');
    expect(tsc.code).toBe(0);
    for (const block of consumer.docs)
      expect(fs.existsSync(path.join(consumer.app, 'build', 'docs', docFile(block).replace(/\.ts$/, '.js')))).toBe(
        true,
      );
  });

  it("runs the README's complete programs: each synthesizes its mesh", () => {
    // GIVEN the README blocks that are programs (they import meshform and call app.synth()), compiled above
    const programs = consumer.docs.filter((b) => /^import\b/m.test(b.code) && /\bapp\.synth\(\)/.test(b.code));
    expect(programs.map((b) => b.file)).toContain('README.md');
    for (const program of programs) {
      const outdir = path.join(consumer.root, `docs-out-${program.line}`);
      const compiled = path.join('build', 'docs', docFile(program).replace(/\.ts$/, '.js'));
      // WHEN it runs
      const run = sh(consumer.app, `node ${compiled}`, { CDKTF_OUTDIR: outdir });
      // THEN it writes its stacks
      expect(run.code, `${program.file}:${program.line}\n${run.stderr}`).toBe(0);
      const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
        stacks: object;
      };
      expect(Object.keys(manifest.stacks).length, `${program.file}:${program.line}`).toBeGreaterThan(0);
    }
  });
});
