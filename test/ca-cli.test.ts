import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { caStatus, CA_EXIT } from '../cli/ca';
import { splitPem } from '../constructs/private/x509';
import { CertificateAuthority, KubernetesCluster, KubernetesDatacenter, Mesh, SecretStore } from '../index';
import type { App } from '../constructs/private/engine';
import { file, holdsPrivateKey, opensslRoot, opensslVerify } from './ca-support';
import { project, readOutput, readTree, REPO, run, RUN_TS, synth, tempDir, thrownMessage } from './support';

const PASSPHRASE = 'correct horse battery staple';
const DAY = 86_400_000;

/** Topology knobs the test program reads from topology.json in the project directory. */
interface Topology {
  root?: string;
  previousRoot?: string;
  crossSign?: boolean;
  allowRotationWithoutCrossSigning?: boolean;
  westServers?: number;
  meshCa?: 'offline' | 'vault' | 'aws-pca';
}

/** GIVEN helper: a project whose program declares a two-datacenter mesh from topology.json. */
function caProject(topology: Topology = {}): {
  dir: string;
  store: string;
  set(t: Topology): void;
  synth(): { code: number; stdout: string };
} {
  const dir = tempDir('meshform-ca-project-');
  const program = path.join(dir, 'app.ts');
  fs.writeFileSync(
    program,
    `import * as fs from 'node:fs';
import { App, CertificateAuthority, KubernetesCluster, KubernetesDatacenter, Mesh, VaultAuth } from ${JSON.stringify(path.join(REPO, 'index'))};
const t = JSON.parse(fs.readFileSync('topology.json', 'utf8'));
const options = { root: t.root, previousRoot: t.previousRoot, crossSign: t.crossSign, allowRotationWithoutCrossSigning: t.allowRotationWithoutCrossSigning };
const ca =
  t.meshCa === 'vault'
    ? CertificateAuthority.vault({ ...options, address: 'https://vault.example.com:8200', rootPkiPath: 'connect-root', kubernetesAuth: VaultAuth.kubernetesPerDatacenter({ role: 'consul-server' }) })
    : t.meshCa === 'aws-pca'
      ? CertificateAuthority.awsPrivateCa({ ...options, primaryCaArn: 'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555' })
      : CertificateAuthority.offline(options);
const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop', { certificateAuthority: ca });
new KubernetesDatacenter(mesh, 'east', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }), meshGateway: { address: 'mgw.east.example.com' } });
new KubernetesDatacenter(mesh, 'west', { cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.7' }), servers: t.westServers ?? 3 });
app.synth();
`,
  );
  fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `${RUN_TS} app.ts` }));
  const set = (t: Topology) => fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify(t));
  set(topology);
  const store = path.join(dir, 'store');
  return { dir, store, set, synth: () => run(['synth', '--project', dir, '--secrets-dir', store]) };
}

function ca(dir: string, ...args: string[]): { code: number; stdout: string } {
  return run(['ca', ...args, '--project', dir, '--secrets-dir', path.join(dir, 'store')]);
}

function roots(storeDir: string): string[] {
  return SecretStore.open({ directory: storeDir }).ca('shop').roots();
}

beforeEach(() => {
  delete process.env.MESHFORM_CA_PASSPHRASE;
  delete process.env.MESHFORM_CA_PASSPHRASE_ROOT_1;
  delete process.env.MESHFORM_CA_PASSPHRASE_ROOT_2;
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.MESHFORM_CA_PASSPHRASE;
});

describe('meshform ca status', () => {
  it('lists every certificate with subject, issuer, fingerprint and expiry, and exits 0 when all are valid', () => {
    // GIVEN
    const p = caProject();
    p.synth();
    // WHEN
    const { code, stdout } = ca(p.dir, 'status');
    // THEN
    expect(code).toBe(CA_EXIT.ok);
    for (const role of ['root root-1', 'intermediate east', 'server east', 'intermediate west', 'server west'])
      expect(stdout).toMatch(new RegExp(`ok +${role}\\n`));
    expect(stdout).toContain('subject O=meshform, CN=shop east intermediate (root-1)');
    expect(stdout).toContain('issuer  O=meshform, CN=shop mesh root root-1');
    expect(stdout).toMatch(/sha256  ([0-9A-F]{2}:){31}[0-9A-F]{2}\n/);
    expect(stdout).toMatch(/expires 20\d\d-\d\d-\d\dT[\d:.]+Z \(364 days\)/);
    expect(stdout.trimEnd().endsWith('all certificates valid')).toBe(true);
  });

  it('prints JSON for CI, and exits 10 when something is due, 20 when something expired', () => {
    const p = caProject();
    p.synth();
    const json = JSON.parse(ca(p.dir, 'status', '--json').stdout);
    expect(json).toMatchObject({ mesh: 'shop', exitCode: 0, errors: [], missing: [] });
    expect(json.certificates.map((c: { role: string; state: string }) => `${c.role}: ${c.state}`)).toEqual([
      'root root-1: ok',
      'intermediate east: ok',
      'server east: ok',
      'intermediate west: ok',
      'server west: ok',
    ]);
    const mesh = readOutput(path.join(p.dir, 'cdktf.out')).mesh('shop');
    const store = SecretStore.open({ directory: p.store });
    const due = caStatus(store, mesh, false, new Date(Date.now() + 300 * DAY));
    expect(due.code).toBe(CA_EXIT.due);
    expect(due.output).toMatch(/DUE +server east\n/);
    expect(due.output).toContain('due within 90 days or missing: run npx meshform synth');
    const expired = caStatus(store, mesh, true, new Date(Date.now() + 400 * DAY));
    expect(expired.code).toBe(CA_EXIT.invalid);
    expect(JSON.parse(expired.output).certificates.find((c: { role: string }) => c.role === 'server west').state).toBe(
      'expired',
    );
  });

  it('exits 20 with the reason when the material is invalid', () => {
    const p = caProject();
    p.synth();
    const dcs = path.join(p.store, 'shop', 'ca', 'datacenters');
    fs.copyFileSync(path.join(dcs, 'west', 'server-key.pem'), path.join(dcs, 'east', 'server-key.pem'));
    const { code, stdout } = ca(p.dir, 'status');
    expect(code).toBe(CA_EXIT.invalid);
    expect(stdout).toMatch(/INVALID +server east\n/);
    expect(stdout).toContain(
      'error: [shop server east] the private key does not match the certificate. Fix: issue a new one with `meshform ca rotate --intermediate east`',
    );
  });
});

describe('meshform ca init, protect, rotate', () => {
  it('init creates a passphrase-protected root when the app was synthesized by cdktf, and only once', () => {
    // GIVEN a project synthesized without meshform (no root yet)
    const p = caProject();
    synth(twoDatacenters(), path.join(p.dir, 'cdktf.out'));
    process.env.MESHFORM_CA_PASSPHRASE = PASSPHRASE;
    // WHEN
    expect(ca(p.dir, 'init').stdout).toBe('created root root-1 of mesh shop (key encrypted with your passphrase)\n');
    // THEN
    const store = SecretStore.open({ directory: p.store }).ca('shop');
    expect(store.isUnattended('root-1')).toBe(false);
    expect(fs.readFileSync(path.join(p.store, 'shop', 'ca', 'roots', 'root-1', 'key.pem'), 'utf8')).toContain(
      'BEGIN ENCRYPTED PRIVATE KEY',
    );
    expect(thrownMessage(() => ca(p.dir, 'init'))).toBe(
      '[shop root root-1] this root already exists in the store. Fix: choose another id with --id',
    );
  });

  it('protect moves an unattended root offline: afterwards signing needs the passphrase', () => {
    const p = caProject();
    p.synth();
    process.env.MESHFORM_CA_PASSPHRASE = PASSPHRASE;
    expect(ca(p.dir, 'protect', '--root', '--id', 'root-1').stdout).toContain(
      "root root-1's key is now encrypted with your passphrase only",
    );
    expect(fs.existsSync(path.join(p.store, 'shop', 'ca', 'roots', 'root-1', 'passphrase'))).toBe(false);
    delete process.env.MESHFORM_CA_PASSPHRASE;
    expect(thrownMessage(() => ca(p.dir, 'rotate', '--intermediate', 'east'))).toBe(
      '[shop root root-1] signing with this root needs its passphrase. Fix: set MESHFORM_CA_PASSPHRASE_ROOT_1 (or MESHFORM_CA_PASSPHRASE), or run meshform from a terminal to be asked for it',
    );
    process.env.MESHFORM_CA_PASSPHRASE_ROOT_1 = PASSPHRASE;
    expect(ca(p.dir, 'rotate', '--intermediate', 'east').stdout).toBe(
      "issued a new intermediate and server certificate for east under root-1: export the secrets and deploy east's stack\n",
    );
  });

  it('rotate --root creates a cross-signed root and prints the planned change; a wrong passphrase leaves the store as it was', () => {
    const p = caProject();
    process.env.MESHFORM_CA_PASSPHRASE = PASSPHRASE;
    p.synth();
    process.env.MESHFORM_CA_PASSPHRASE = 'not the passphrase';
    expect(thrownMessage(() => ca(p.dir, 'rotate', '--root'))).toContain(
      '[shop root root-1] the passphrase does not decrypt the root key',
    );
    expect(roots(p.store)).toEqual(['root-1']);
    process.env.MESHFORM_CA_PASSPHRASE = PASSPHRASE;
    const { code, stdout } = ca(p.dir, 'rotate', '--root');
    expect(code).toBe(0);
    expect(stdout).toContain('created root root-2, cross-signed by root-1 (verified)');
    expect(stdout).toContain(
      "1. set  certificateAuthority: CertificateAuthority.offline({ root: 'root-2', previousRoot: 'root-1' })",
    );
    expect(stdout).toContain(
      '2. when every datacenter runs on root-2: remove previousRoot, npx meshform synth, deploy again',
    );
    expect(roots(p.store)).toEqual(['root-1', 'root-2']);
  });

  it('rotate --root --no-cross-sign is refused unless forced', () => {
    const p = caProject();
    p.synth();
    expect(thrownMessage(() => ca(p.dir, 'rotate', '--root', '--no-cross-sign'))).toBe(
      '[shop root root-1] a root rotation without cross-signing breaks trust between datacenters until every one is updated. Fix: drop --no-cross-sign, or add --force to accept it',
    );
    expect(roots(p.store)).toEqual(['root-1']);
    const forced = ca(p.dir, 'rotate', '--root', '--no-cross-sign', '--force', '--id', 'emergency-1').stdout;
    expect(forced).toContain('created root emergency-1 (NOT cross-signed) (unattended)');
    expect(forced).toContain("previousRoot: 'root-1', crossSign: false, allowRotationWithoutCrossSigning: true");
    expect(SecretStore.open({ directory: p.store }).ca('shop').crossCertificate('emergency-1')).toBeUndefined();
  });

  it('rotate --intermediate issues a new intermediate and server certificate that verify', () => {
    const p = caProject();
    p.synth();
    const material = SecretStore.open({ directory: p.store }).ca('shop');
    const before = material.intermediate('west')!.certificatePem;
    ca(p.dir, 'rotate', '--intermediate', 'west');
    expect(material.intermediate('west')!.certificatePem).not.toBe(before);
    expect(opensslVerify(material.rootCertificate('root-1')!, material.server('west')!.chainPem).ok).toBe(true);
    expect(thrownMessage(() => ca(p.dir, 'rotate', '--intermediate', 'north'))).toBe(
      '[shop intermediate north] the mesh has no datacenter "north". Fix: use one of "east", "west"',
    );
  });
});

describe('meshform ca import and sign-csr', () => {
  it('imports a root made with openssl, after checking it', () => {
    const p = caProject({ root: 'corp-1' });
    synth(twoDatacenters('corp-1'), path.join(p.dir, 'cdktf.out'));
    const root = opensslRoot({ ca: true, subject: '/CN=Corp Consul CA' });
    process.env.MESHFORM_CA_PASSPHRASE = PASSPHRASE;
    const out = ca(p.dir, 'import', '--root', '--id', 'corp-1', '--cert', root.certificateFile, '--key', root.keyFile);
    expect(out.stdout).toBe(
      'imported root corp-1 into mesh shop (key encrypted with your passphrase)\n' +
        "it is the topology's active root: npx meshform synth issues every datacenter's intermediate under it\n",
    );
    expect(roots(p.store)).toEqual(['corp-1']);
  });

  it("signs a CSR (e.g. Vault's mesh root mount) with the active root; the output verifies with openssl", () => {
    const p = caProject();
    p.synth();
    const csr = file('vault.csr', '');
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        file('k.pem', ''),
        '-subj',
        '/CN=shop connect root',
        '-out',
        csr,
      ],
      { stdio: 'pipe' },
    );
    const { stdout } = ca(p.dir, 'sign-csr', '--csr', csr, '--days', '200');
    const [certificate, root] = splitPem(stdout);
    expect(opensslVerify(root!, certificate!, 'any').ok).toBe(true);
    const bad = file('bad.csr', 'not a request');
    expect(thrownMessage(() => ca(p.dir, 'sign-csr', '--csr', bad))).toBe(
      '[shop root root-1] cannot sign the request: not a PEM certificate request (no BEGIN CERTIFICATE REQUEST block). ' +
        'Fix: give the PEM CSR your CA produced (e.g. `vault write -field=csr <mount>/intermediate/generate/internal common_name=...`)',
    );
  });
});

describe('root rotation as a planned change (meshform synth)', () => {
  it('walks a mesh from root-1 to root-2: rotation step on its own, then retirement', () => {
    // GIVEN a deployed mesh on root-1 and a new root created by `ca rotate --root`
    const p = caProject();
    p.synth();
    ca(p.dir, 'rotate', '--root');
    const before = readTree(path.join(p.dir, 'cdktf.out'));

    // WHEN the topology switches straight to root-2, THEN it is refused: no rotation step
    p.set({ root: 'root-2' });
    expect(thrownMessage(() => p.synth())).toBe(
      "[shop root root-2] the active root changes from root-1 to root-2 with no rotation step: datacenters still on root-1 would reject the new chains. Fix: set `root: 'root-2', previousRoot: 'root-1'` and deploy every datacenter first (or allowRotationWithoutCrossSigning: true to accept the outage)",
    );
    // WHEN the rotation step comes with another change, THEN it is refused
    p.set({ root: 'root-2', previousRoot: 'root-1', westServers: 5 });
    expect(thrownMessage(() => p.synth())).toBe(
      'mesh shop: a root rotation step is refused together with other changes (datacenter west changed); nothing was written. Fix: synthesize and deploy the rotation step on its own, then the other changes',
    );
    expect(readTree(path.join(p.dir, 'cdktf.out'))).toEqual(before);

    // WHEN the rotation step comes alone
    p.set({ root: 'root-2', previousRoot: 'root-1' });
    const step = p.synth().stdout;
    // THEN every datacenter trusts both roots and presents a chain the old root accepts
    expect(step).toContain(
      'root rotation step: root-1 → root-2 (cross-signed): deploy every datacenter, then remove previousRoot',
    );
    const env = run(['secrets', 'env', '--project', p.dir, '--secrets-dir', p.store]).stdout;
    const value = (name: string) =>
      execFileSync('bash', ['-c', `eval "$E"; printf '%s' "$TF_VAR_${name}"`], {
        env: { PATH: process.env.PATH, E: env },
        encoding: 'utf8',
      });
    const material = SecretStore.open({ directory: p.store }).ca('shop');
    expect(value('meshform_shop_west_ca_bundle')).toBe(
      `${material.rootCertificate('root-2')}${material.rootCertificate('root-1')}`,
    );
    expect(splitPem(value('meshform_shop_west_server_cert'))).toHaveLength(3);
    expect(opensslVerify(material.rootCertificate('root-1')!, value('meshform_shop_west_server_cert')).ok).toBe(true);

    // WHEN the previous root is retired, THEN only root-2 is trusted and chains lose the cross-signed root
    p.set({ root: 'root-2' });
    expect(p.synth().stdout).toContain(
      'root rotation finished: only root-2 is trusted once every datacenter is deployed',
    );
    const after = run(['secrets', 'env', '--project', p.dir, '--secrets-dir', p.store]).stdout;
    const finalValue = (name: string) =>
      execFileSync('bash', ['-c', `eval "$E"; printf '%s' "$TF_VAR_${name}"`], {
        env: { PATH: process.env.PATH, E: after },
        encoding: 'utf8',
      });
    expect(finalValue('meshform_shop_east_ca_bundle')).toBe(material.rootCertificate('root-2'));
    // AND the store's version of each datacenter's secrets went up: the write-only arguments are sent again
    for (const dc of ['east', 'west'])
      expect(Number(finalValue(`meshform_shop_${dc}_secrets_version`)), dc).toBeGreaterThan(
        Number(value(`meshform_shop_${dc}_secrets_version`)),
      );
    expect(splitPem(finalValue('meshform_shop_east_server_cert'))).toHaveLength(2);
    expect(ca(p.dir, 'status').code).toBe(CA_EXIT.ok);
  });

  it('keeps the last synthesized topology in the store, so a fresh checkout (no cdktf.out) is checked too', () => {
    const p = caProject();
    p.synth();
    ca(p.dir, 'rotate', '--root');
    fs.rmSync(path.join(p.dir, 'cdktf.out'), { recursive: true });
    p.set({ root: 'root-2' });
    expect(thrownMessage(() => p.synth())).toContain(
      'the active root changes from root-1 to root-2 with no rotation step',
    );
  });

  it('refuses to retire the previous root before every datacenter received material under the new one', () => {
    const p = caProject();
    p.synth();
    ca(p.dir, 'rotate', '--root');
    p.set({ root: 'root-2', previousRoot: 'root-1' });
    p.synth();
    // a rotation step recorded for east only (e.g. west was synthesized out of band)
    const journal = path.join(p.store, 'shop', 'ca', 'rotation.json');
    fs.writeFileSync(journal, JSON.stringify({ from: 'root-1', to: 'root-2', issued: ['east'] }));
    p.set({ root: 'root-2' });
    expect(thrownMessage(() => p.synth())).toBe(
      "[shop root root-1] retiring root-1 is refused: west never received certificates under root-2. Fix: keep `previousRoot: 'root-1'`, synthesize and deploy every datacenter, then remove it",
    );
  });

  it('never puts a root or intermediate key into the output, a Terraform variable or output, or the exported secrets', () => {
    // GIVEN the default example in the middle of a rotation (two roots, a cross-signed root)
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const storeDir = path.join(dir, 'store');
    run(['synth', '--project', dir, '--secrets-dir', storeDir]);
    run(['ca', 'rotate', '--root', '--project', dir, '--secrets-dir', storeDir]);
    const material = SecretStore.open({ directory: storeDir });
    // WHEN
    const env = run(['secrets', 'env', '--project', dir, '--secrets-dir', storeDir]).stdout;
    const tfvars = run(['secrets', 'tfvars', '--project', dir, '--secrets-dir', storeDir]).stdout;
    const shown = run(['secrets', 'show', '--project', dir, '--secrets-dir', storeDir]).stdout;
    const out = readOutput(path.join(dir, 'cdktf.out'));
    // THEN no CA key (roots, intermediates) nor a root passphrase appears anywhere
    const caDir = path.join(material.meshDirectory('shop'), 'ca');
    const rootIds = material.ca('shop').roots();
    expect(rootIds).toEqual(['root-1', 'root-2']);
    const passphrases = rootIds.map((id) =>
      fs.readFileSync(path.join(caDir, 'roots', id, 'passphrase'), 'utf8').trim(),
    );
    const keys = [
      ...rootIds.map((id, i) => ({
        name: `root ${id}`,
        pem: fs.readFileSync(path.join(caDir, 'roots', id, 'key.pem'), 'utf8'),
        passphrase: passphrases[i],
      })),
      ...['aws-us-east', 'gcp-europe-west', 'aws-vms'].map((dc) => ({
        name: `intermediate ${dc}`,
        pem: material.ca('shop').intermediate(dc)!.keyPem,
        passphrase: undefined,
      })),
    ];
    const places = [['secrets env', env], ['secrets tfvars', tfvars], ['secrets show', shown], ...out.files()] as [
      string,
      string,
    ][];
    for (const [where, text] of places) {
      for (const key of keys)
        expect(holdsPrivateKey(text, key.pem, key.passphrase), `${where} holds the key of ${key.name}`).toBe(false);
      for (const passphrase of passphrases)
        expect(text.includes(passphrase), `${where} holds a root passphrase`).toBe(false);
      // a PEM private key block (not the shape check of the key variable, which names the header)
      if (!where.startsWith('secrets'))
        expect(text, where).not.toMatch(/-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----(\\n|\n)[A-Za-z0-9+/]/);
    }
    // the check itself finds a key where there is one: each datacenter's server key is in `secrets env`
    expect(holdsPrivateKey(env, material.ca('shop').server('aws-vms')!.keyPem)).toBe(true);
    // every Terraform variable of every stack is a shared secret, the stack's own TLS material or the version of
    // its datacenter's secrets; no output exposes one
    for (const stack of out.stackNames()) {
      const json = out.stack(stack);
      for (const name of Object.keys(json.variable ?? {})) {
        expect(name, `${stack}: ${name}`).toMatch(
          /^meshform_shop_(gossip_key|acl_bootstrap_token|acl_replication_token|[a-z0-9_]+_(ca_bundle|server_cert|server_key|client_api_cert|client_api_key|secrets_version))$/,
        );
      }
      for (const [name, output] of Object.entries(json.output ?? {}))
        expect(JSON.stringify(output), `${stack} output ${name}`).not.toContain('var.meshform_');
    }
  });
});

describe('service mesh CA changes', () => {
  it('refuses a move to AWS Private CA (no cross-signing) unless accepted, and prints how Consul applies it', () => {
    const p = caProject();
    p.synth();
    p.set({ meshCa: 'aws-pca' });
    expect(thrownMessage(() => p.synth())).toContain(
      'mesh shop: changing the service mesh CA from consul to aws-pca (existing_arn=arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555) cannot be cross-signed',
    );
    p.set({ meshCa: 'aws-pca', allowRotationWithoutCrossSigning: true });
    const { stdout } = p.synth();
    expect(stdout).toContain('service mesh CA change: consul → aws-pca');
    expect(stdout).toContain('`consul connect ca set-config -config-file');
    const body = JSON.parse(
      fs.readFileSync(path.join(p.dir, 'cdktf.out', 'meshform', 'connect-ca', 'shop.json'), 'utf8'),
    );
    expect(body).toMatchObject({ Provider: 'aws-pca', ForceWithoutCrossSigning: true });
  });

  it('refuses a service mesh CA change together with other changes', () => {
    const p = caProject();
    p.synth();
    p.set({ meshCa: 'vault', westServers: 5 });
    expect(thrownMessage(() => p.synth())).toBe(
      'mesh shop: a service mesh CA change step is refused together with other changes (datacenter west changed); nothing was written. Fix: synthesize and deploy the rotation step on its own, then the other changes',
    );
  });
});

/** The two-datacenter mesh of caProject, for synthesizing without meshform (as `cdktf synth` does). */
function twoDatacenters(root?: string): (app: App) => void {
  return (app) => {
    const mesh = new Mesh(app, 'shop', { certificateAuthority: CertificateAuthority.offline(root ? { root } : {}) });
    new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.7' }),
    });
  };
}
