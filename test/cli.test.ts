import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretStore } from '../index';
import { project, readOutput, readTree, REPO, run, tempDir, thrownMessage } from './support';

afterEach(() => vi.restoreAllMocks());

describe('meshform synth', () => {
  it('synthesizes the default example, creates the secret store and prints the deploy order', () => {
    // GIVEN
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const store = path.join(dir, 'secrets');
    // WHEN
    const { code, stdout } = run(['synth', '--project', dir, '--secrets-dir', store]);
    // THEN
    expect(code).toBe(0);
    const out = readOutput(path.join(dir, 'cdktf.out'));
    expect(out.stackNames().sort()).toEqual([
      'shop-aws-us-east',
      'shop-aws-us-east-config',
      'shop-aws-us-east-infra',
      'shop-aws-vms',
      'shop-gcp-europe-west',
    ]);
    expect(SecretStore.open({ directory: store }).has('shop')).toBe(true);
    expect(stdout).toContain(
      'mesh shop — Consul 2.0.3, consul-k8s chart 2.0.3, domain consul, 3 datacenters, synthesized into cdktf.out',
    );
    expect(stdout).toMatch(
      /1\. shop-aws-us-east-infra\s+aws-us-east \(primary\)\s+first; state: local \(terraform\.shop-aws-us-east-infra\.tfstate\)/,
    );
    expect(stdout).toMatch(/2\. shop-aws-us-east\s+aws-us-east \(primary\)\s+after shop-aws-us-east-infra/);
    expect(stdout).toMatch(/3\. shop-aws-us-east-config\s+aws-us-east \(primary\)\s+after shop-aws-us-east;/);
    expect(stdout).toMatch(/4\. shop-gcp-europe-west\s+gcp-europe-west\s+after shop-aws-us-east;/);
    expect(stdout).toMatch(/5\. shop-aws-vms\s+aws-vms\s+after shop-aws-us-east;/);
    expect(stdout).toContain('gcp-europe-west → aws-us-east via mgw.aws-us-east.shop.example.com:443');
    expect(stdout).toContain(`created secret store ${path.join(store, 'shop')}`);
    expect(stdout).toContain(
      'before deploying: npx meshform deploy, or eval "$(npx meshform secrets env)" then npx cdktf deploy \'*\'',
    );

    // WHEN run again, the store is reused
    const again = run(['synth', '--project', dir, '--secrets-dir', store]);
    expect(again.stdout).toContain(`using secret store ${path.join(store, 'shop')}`);
  });

  it('leaves the previous output untouched when the app fails, and reports the meshform error', () => {
    // GIVEN a project that synthesized once, then breaks
    const program = path.join(tempDir(), 'app.ts');
    const good = `import { App, KubernetesCluster, KubernetesDatacenter, Mesh } from ${JSON.stringify(path.join(REPO, 'index'))};
const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop');
new KubernetesDatacenter(mesh, 'east', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }), servers: SERVERS });
app.synth();
`;
    fs.writeFileSync(program, good.replace('SERVERS', '3'));
    const dir = project(program);
    run(['synth', '--project', dir, '--secrets-dir', path.join(dir, 'secrets')]);
    const before = readTree(path.join(dir, 'cdktf.out'));
    fs.writeFileSync(program, good.replace('SERVERS', '4'));
    // WHEN / THEN
    const message = thrownMessage(() => run(['synth', '--project', dir, '--secrets-dir', path.join(dir, 'secrets')]));
    expect(message).toContain('synthesis failed');
    expect(message).toContain('nothing was written');
    expect(message).toContain('[shop/east] Consul server count must be one of 1, 3, 5: 4.');
    expect(readTree(path.join(dir, 'cdktf.out'))).toEqual(before);
    expect(fs.readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
  });

  it('keeps the .terraform directory of a stack across synths', () => {
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const store = path.join(dir, 'secrets');
    run(['synth', '--project', dir, '--secrets-dir', store]);
    const providers = path.join(dir, 'cdktf.out', 'stacks', 'shop-aws-us-east', '.terraform');
    fs.mkdirSync(providers);
    fs.writeFileSync(path.join(providers, 'marker'), 'x');
    run(['synth', '--project', dir, '--secrets-dir', store]);
    expect(fs.readFileSync(path.join(providers, 'marker'), 'utf8')).toBe('x');
  });
});

describe('meshform secrets', () => {
  it('exports every secret variable as TF_VAR_ lines a shell can eval, and as tfvars', () => {
    // GIVEN a synthesized project
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const storeDir = path.join(dir, 'secrets');
    run(['synth', '--project', dir, '--secrets-dir', storeDir]);
    const secrets = SecretStore.open({ directory: storeDir }).load('shop');
    // WHEN
    const env = run(['secrets', 'env', '--project', dir, '--secrets-dir', storeDir]).stdout;
    const tfvars = run(['secrets', 'tfvars', '--project', dir, '--secrets-dir', storeDir]).stdout;
    // THEN
    const evaluated = (name: string) =>
      execFileSync('bash', ['-c', `eval "$MESHFORM_ENV"; printf '%s' "$TF_VAR_${name}"`], {
        env: { PATH: process.env.PATH, MESHFORM_ENV: env },
        encoding: 'utf8',
      });
    const store = SecretStore.open({ directory: storeDir });
    const ca = store.ca('shop');
    const east = ca.server('aws-us-east')!;
    expect(evaluated('meshform_shop_aws_us_east_ca_bundle')).toBe(ca.rootCertificate('root-1'));
    expect(evaluated('meshform_shop_aws_us_east_server_cert')).toBe(east.chainPem);
    expect(evaluated('meshform_shop_aws_us_east_server_key')).toBe(east.keyPem);
    expect(evaluated('meshform_shop_aws_vms_server_cert')).toBe(ca.server('aws-vms')!.chainPem);
    expect(evaluated('meshform_shop_gossip_key')).toBe(secrets.gossipKey);
    expect(evaluated('meshform_shop_acl_bootstrap_token')).toBe(secrets.aclBootstrapToken);
    expect(evaluated('meshform_shop_acl_replication_token')).toBe(secrets.aclReplicationToken);
    expect(env).toContain(`export TF_VAR_meshform_shop_gossip_key='${secrets.gossipKey}'`);
    expect(tfvars).toContain(`meshform_shop_acl_bootstrap_token = "${secrets.aclBootstrapToken}"`);
    expect(tfvars).toContain(
      `meshform_shop_gcp_europe_west_ca_bundle = <<-EOT\n${ca.rootCertificate('root-1')!.trimEnd()}\nEOT`,
    );
    // AND no root or intermediate key is exported
    const rootKey = fs.readFileSync(path.join(store.meshDirectory('shop'), 'ca', 'roots', 'root-1', 'key.pem'), 'utf8');
    for (const key of [rootKey, ca.intermediate('aws-us-east')!.keyPem]) {
      expect(env).not.toContain(key.split('\n')[1]);
      expect(tfvars).not.toContain(key.split('\n')[1]);
    }
  });

  it('shows where the secrets are without printing any', () => {
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const storeDir = path.join(dir, 'secrets');
    run(['synth', '--project', dir, '--secrets-dir', storeDir]);
    const secrets = SecretStore.open({ directory: storeDir }).load('shop');
    const shown = run(['secrets', 'show', '--project', dir, '--secrets-dir', storeDir]).stdout;
    expect(shown).toContain(`shop: ${path.join(storeDir, 'shop')}`);
    expect(shown).not.toContain(secrets.gossipKey);
    expect(shown).not.toContain(secrets.aclBootstrapToken);
    expect(shown).not.toContain(secrets.aclReplicationToken);
  });

  it('asks for a synth first', () => {
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    expect(thrownMessage(() => run(['secrets', 'env', '--project', dir]))).toBe(
      `${path.join(dir, 'cdktf.out')} holds no synthesized app: run npx meshform synth first`,
    );
  });
});
