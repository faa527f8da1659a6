import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineDefaultMesh } from '../examples/default/main';
import { EXAMPLES, type Example } from '../examples';
import { defineMultiClusterMesh } from '../examples/multi-cluster/main';
import { Cloud, MultiClusterMesh, SecretStore } from '../index';
import { helmValues, project, readTree, REPO, run, synth, type Synthesized, tempDir, thrownMessage } from './support';

/**
 * Two synths of each example, into different directories (made once per example, read-only for the tests
 * below): the snapshot and the path check read them, the determinism check compares them.
 */
const twice = new Map<string, { one: Synthesized; two: Synthesized }>();
function synthesizedTwice(example: Example): { one: Synthesized; two: Synthesized } {
  let both = twice.get(example.name);
  if (!both) {
    const one = synth(example.define, path.join(tempDir(), 'one', 'cdktf.out'));
    const two = synth(example.define, path.join(tempDir(), 'two', 'deeper', 'cdktf.out'));
    both = { one, two };
    twice.set(example.name, both);
  }
  return both;
}

describe.each(EXAMPLES.map((e) => [e.name, e] as const))('examples/%s', (_name, example) => {
  it('matches its snapshot', () => {
    // GIVEN / WHEN
    const files = synthesizedTwice(example).one.files();
    // THEN
    expect(Object.fromEntries(files)).toMatchSnapshot();
  });

  it('is deterministic: two synths into different directories are byte-identical', () => {
    const a = synthesizedTwice(example).one.files();
    const b = synthesizedTwice(example).two.files();
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [file, content] of a) expect(b.get(file), file).toBe(content);
  });

  it('writes no machine-specific path into the output', () => {
    for (const out of Object.values(synthesizedTwice(example))) {
      for (const [file, content] of out.files()) {
        expect(content, file).not.toContain(out.outdir);
        expect(content, file).not.toContain(REPO);
      }
    }
  });
});

describe('examples/default', () => {
  it('produces the same stacks with `cdktf synth` (cdktf.json points at it)', () => {
    // GIVEN the in-process synthesis
    const expected = synthesizedTwice(EXAMPLES.find((e) => e.define === defineDefaultMesh)!).one.files();
    // WHEN the cdktf CLI synthesizes the project
    const outdir = path.join(tempDir(), 'cdktf.out');
    execFileSync(path.join(REPO, 'node_modules', '.bin', 'cdktf'), ['synth', '--output', outdir], {
      cwd: REPO,
      env: { ...process.env, CHECKPOINT_DISABLE: '1', CI: '1' },
      stdio: 'pipe',
    });
    // THEN
    const actual = readTree(outdir);
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [file, content] of expected) expect(actual.get(file), file).toBe(content);
  });

  it('writes no private key, token or gossip key under cdktf.out', () => {
    // GIVEN a project synthesized by the CLI, which also creates the secret store
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const storeDir = path.join(dir, 'secrets');
    run(['synth', '--project', dir, '--secrets-dir', storeDir]);
    const store = SecretStore.open({ directory: storeDir });
    const secrets = store.load('shop');
    // every key in the store (roots, intermediates, server keys) and the unattended root's passphrase
    const storeFiles = [...readTree(path.join(store.meshDirectory('shop'), 'ca'))].filter(([file]) =>
      /key\.pem$|passphrase$/.test(file),
    );
    // a root, 3 intermediates, 3 server keys and the VM datacenter's client API key
    expect(storeFiles.map(([file]) => file).filter((f) => f.endsWith('key.pem')).length).toBe(1 + 3 + 3 + 1);
    const keyBody = storeFiles.flatMap(([, content]) =>
      content.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----')),
    );
    // WHEN
    const files = readTree(path.join(dir, 'cdktf.out'));
    // THEN
    expect(files.size).toBeGreaterThan(0);
    for (const [file, content] of files) {
      expect(content, file).not.toMatch(/-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/);
      expect(content, file).not.toContain(secrets.gossipKey);
      expect(content, file).not.toContain(secrets.aclBootstrapToken);
      expect(content, file).not.toContain(secrets.aclReplicationToken);
      for (const line of keyBody)
        expect(content.includes(line), `${file} holds a line of a key in the store`).toBe(false);
    }
    // the store itself lives outside the output
    expect(fs.existsSync(path.join(dir, 'cdktf.out', 'secrets'))).toBe(false);
  });
});

describe('examples/multi-cluster', () => {
  it('puts each cluster in its own Terraform Cloud workspace, behind its cloud load balancer', () => {
    const out = synth(defineMultiClusterMesh);
    expect(out.stackNames().sort()).toEqual([
      'payments-aws-eu-west',
      'payments-aws-eu-west-config',
      'payments-azure-north-europe',
      'payments-gcp-us-central',
    ]);
    expect(out.stack('payments-gcp-us-central').terraform.cloud).toEqual({
      organization: 'acme',
      workspaces: { name: 'mesh-payments-gcp-us-central' },
    });
    const annotations = helmValues(out.stack('payments-aws-eu-west')).meshGateway.service.annotations as string;
    expect(annotations).toContain(
      '"external-dns.alpha.kubernetes.io/hostname": "mgw.aws-eu-west.payments.example.com"',
    );
    expect(annotations).toContain('"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"');
    expect(out.manifest.stacks['payments-azure-north-europe']!.dependencies).toEqual(['payments-aws-eu-west']);
  });

  it('refuses a primary that names no cluster', () => {
    expect(
      thrownMessage(() =>
        synth(
          (app) =>
            new MultiClusterMesh(app, 'm', {
              primary: 'nope',
              clusters: [{ name: 'a', cloud: Cloud.AWS, kubeconfigContext: 'a' }],
            }),
        ),
      ),
    ).toBe('[m] the primary names no cluster of the mesh: "nope". Fix: name one of "a"');
  });
});
