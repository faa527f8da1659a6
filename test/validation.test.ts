import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from '../constructs/private/engine';
import {
  KubernetesCluster,
  KubernetesDatacenter,
  KubernetesDatacenterProps,
  Mesh,
  MeshGatewayServiceType,
  MeshProps,
  StateBackend,
} from '../index';
import { tempDir, thrownMessage } from './support';

/** A fresh app writing into a fresh directory. */
function freshApp(): { app: App; outdir: string } {
  const outdir = path.join(tempDir(), 'cdktf.out');
  return { app: new App({ outdir, stackTraces: false }), outdir };
}

const primary: KubernetesDatacenterProps = {
  primary: true,
  cluster: KubernetesCluster.fromKubeconfig({ context: 'p' }),
  meshGateway: { address: 'mgw.example.com' },
};
const secondary: KubernetesDatacenterProps = {
  cluster: KubernetesCluster.fromKubeconfig({ context: 's', apiServerUrl: 'https://198.51.100.7' }),
};

function mesh(props: MeshProps = {}): { app: App; mesh: Mesh; outdir: string } {
  const { app, outdir } = freshApp();
  return { app, mesh: new Mesh(app, 'shop', props), outdir };
}

/** THEN helper: synthesis wrote no stack. */
function expectNothingWritten(outdir: string): void {
  const stacks = path.join(outdir, 'stacks');
  expect(fs.existsSync(stacks) ? fs.readdirSync(stacks) : []).toEqual([]);
  expect(fs.existsSync(path.join(outdir, 'manifest.json'))).toBe(false);
  expect(fs.existsSync(path.join(outdir, 'meshform'))).toBe(false);
}

describe('datacenter names', () => {
  it('rejects a duplicate datacenter name', () => {
    // GIVEN
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'east', primary);
    // WHEN / THEN
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'east-again', { ...secondary, name: 'east' }))).toBe(
      '[shop/east-again] datacenter name is already used by shop/east: "east". Fix: give every datacenter of a mesh its own name',
    );
  });

  it.each([
    ['Upper case', 'AWS_East', 'aws-east'],
    ['underscore (valid for Consul, not RFC 1123)', 'aws_east', 'aws-east'],
    ['leading hyphen', '-east', 'east'],
    ['dot', 'us.east', 'us-east'],
    ['too long', 'a'.repeat(64), 'a'.repeat(63)],
  ])('rejects a name that is not both a Consul datacenter name and an RFC 1123 label: %s', (_what, name, example) => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'dc', { ...primary, name }))).toBe(
      `[shop/dc] datacenter name is not both a Consul datacenter name and an RFC 1123 label: "${name}". ` +
        `Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "${example}")`,
    );
  });

  it('rejects an invalid mesh name', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'Shop'))).toBe(
      '[Shop] mesh name is not both a Consul datacenter name and an RFC 1123 label: "Shop". ' +
        'Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "shop")',
    );
  });
});

describe('primary', () => {
  it('rejects a mesh without a primary, writing nothing', () => {
    // GIVEN
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', secondary);
    new KubernetesDatacenter(m, 'b', secondary);
    // WHEN / THEN
    expect(thrownMessage(() => app.synth())).toBe(
      '[shop] no datacenter is primary; exactly one must be: ["a","b"]. Fix: set `primary: true` on exactly one datacenter',
    );
    expectNothingWritten(outdir);
  });

  it('rejects a second primary', () => {
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'a', primary);
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', primary))).toBe(
      '[shop] 2 datacenters are primary ("a", "b"); exactly one must be: ["a","b"]. ' +
        'Fix: keep `primary: true` on one datacenter and remove it from the others',
    );
  });

  it('rejects a mesh with no datacenter at synth', () => {
    const { app, outdir } = freshApp();
    const m = new Mesh(app, 'shop');
    // a stack of the mesh must exist for synthesis to reach it: use prepare() directly
    expect(thrownMessage(() => m.prepare())).toBe(
      '[shop] the mesh has no datacenter: []. Fix: add at least one datacenter, e.g. `new KubernetesDatacenter(mesh, "dc1", { primary: true, ... })`',
    );
    expectNothingWritten(outdir);
  });
});

describe('servers', () => {
  it.each([0, 2, 4, 7, 2.5])('rejects %s servers', (servers) => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, servers }))).toBe(
      `[shop/a] Consul server count must be one of 1, 3, 5: ${servers}. ` +
        'Fix: use 3 (tolerates one failure) or 5 (tolerates two); 1 only for a throwaway datacenter',
    );
  });
});

describe('gateways', () => {
  it('rejects a multi-datacenter mesh whose primary declares no gateway address, writing nothing', () => {
    // GIVEN
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'a' }) });
    new KubernetesDatacenter(m, 'b', secondary);
    new KubernetesDatacenter(m, 'c', secondary);
    // WHEN / THEN
    expect(thrownMessage(() => app.synth())).toBe(
      '[shop/a/MeshGateway] the primary datacenter "a" has no declared mesh gateway address, so "b", "c" cannot reach it ' +
        'without reading its Terraform state: (not set). Fix: set `meshGateway: { address: "<stable DNS name or reserved IP>" }` ' +
        'on the primary (for example a DNS record or a reserved load balancer IP for its mesh gateway)',
    );
    expectNothingWritten(outdir);
  });

  it('lets a single-datacenter mesh omit the gateway address', () => {
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'a' }) });
    app.synth();
    expect(fs.readdirSync(path.join(outdir, 'stacks')).sort()).toEqual(['shop-a', 'shop-a-config']);
  });

  it.each(['https://mgw.example.com', 'mgw.example.com:443', 'mgw_example.com', ''])(
    'rejects gateway address %j',
    (address) => {
      const { mesh: m } = mesh();
      expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, meshGateway: { address } }))).toBe(
        `[shop/a/MeshGateway] mesh gateway address is not a DNS name or an IP address: ${JSON.stringify(address)}. ` +
          'Fix: give a host name (e.g. "mgw.dc1.example.com") or an IP address, without a scheme or port (use `port` for the port)',
      );
    },
  );

  it('rejects a NodePort gateway without a node port in range', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'a', {
            ...primary,
            meshGateway: { serviceType: MeshGatewayServiceType.NODE_PORT, nodePort: 443 },
          }),
      ),
    ).toBe(
      '[shop/a/MeshGateway] a NodePort mesh gateway needs a fixed node port in the Kubernetes NodePort range: 443. ' +
        'Fix: set `meshGateway.nodePort` to a port from 30000 to 32767',
    );
  });

  it('rejects a port out of range and zero replicas', () => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, meshGateway: { port: 70000 } }))).toBe(
      '[shop/a/MeshGateway] mesh gateway port is not a TCP port: 70000. Fix: use a whole number from 1 to 65535',
    );
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', { ...primary, meshGateway: { replicas: 0 } }))).toBe(
      '[shop/b/MeshGateway] mesh gateway replicas must be a whole number from 1 to 100: 0. Fix: use 1 to 100 (2 or more for high availability)',
    );
  });
});

describe('versions', () => {
  it('rejects an unknown Consul version', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { consulVersion: '1.99.0' }))).toBe(
      '[shop] Consul version is not known to work with consul-k8s chart 2.0.3: "1.99.0". ' +
        'Fix: use one of "2.0.0", "2.0.1", "2.0.2", "2.0.3" or pick the chart version that supports it',
    );
  });

  it('rejects an unknown chart version', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { chartVersion: '1.9.0' }))).toBe(
      '[shop] consul-k8s Helm chart version is not one meshform has been checked against: "1.9.0". Fix: use one of "2.0.3"',
    );
  });

  it('rejects an invalid domain', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { domain: 'consul.' }))).toBe(
      '[shop] Consul domain is not a valid DNS name: "consul.". ' +
        'Fix: use dot-separated RFC 1123 labels without a trailing dot (e.g. "consul" or "mesh.example.internal")',
    );
  });
});

describe('kubernetes settings', () => {
  it('requires the API server URL on a secondary', () => {
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'a', primary);
    expect(
      thrownMessage(
        () => new KubernetesDatacenter(m, 'b', { cluster: KubernetesCluster.fromKubeconfig({ context: 'b' }) }),
      ),
    ).toBe(
      '[shop/b] secondary datacenter "b" needs the URL of its Kubernetes API server for the ACL auth method the primary\'s ' +
        'servers call: (not set). Fix: set `apiServerUrl` in `KubernetesCluster.fromKubeconfig({ ... })` to the API server URL as reachable from the primary datacenter ' +
        '(`kubectl config view -o jsonpath="{.clusters[0].cluster.server}"`)',
    );
  });

  it('rejects an API server URL that is not https', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'b', {
            cluster: KubernetesCluster.fromKubeconfig({ context: 'b', apiServerUrl: 'http://10.0.0.1' }),
          }),
      ),
    ).toBe(
      '[shop/b] apiServerUrl is not an https:// URL: "http://10.0.0.1". Fix: give an absolute https:// URL, e.g. "https://203.0.113.10:6443"',
    );
  });

  it('rejects an empty kubeconfig context and a bad namespace', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'a', { ...primary, cluster: KubernetesCluster.fromKubeconfig({ context: ' ' }) }),
      ),
    ).toBe('[shop/a] kubeconfig context must not be empty: "". Fix: set kubeconfig context');
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', { ...primary, namespace: 'Consul' }))).toBe(
      '[shop/b] namespace is not an RFC 1123 label: "Consul". ' +
        'Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit',
    );
  });

  it('refuses a mesh inside a stack', async () => {
    const { app } = freshApp();
    const { TerraformStack } = await import('../constructs/private/engine');
    const stack = new TerraformStack(app, 'mine');
    expect(thrownMessage(() => new Mesh(stack, 'shop'))).toBe(
      '[mine/shop] a Mesh must not be created inside a TerraformStack: meshform creates one stack per datacenter itself: "mine/shop". ' +
        'Fix: create the Mesh directly under the App: `new Mesh(app, "shop", { ... })`',
    );
  });

  it('refuses a second stack with the same name', () => {
    const { app } = freshApp();
    new Mesh(app, 'shop-a');
    const m = new Mesh(app, 'shop');
    new KubernetesDatacenter(m, 'a-b', primary);
    const other = new Mesh(app, 'shop-a-b-mesh', { name: 'shop-a' });
    expect(thrownMessage(() => new KubernetesDatacenter(other, 'b', primary))).toBe(
      '[shop-a-b-mesh/b] another stack of this app already has the name this datacenter needs: "shop-a-b". ' +
        'Fix: rename the mesh or the datacenter so that "<mesh>-<datacenter>" is unique in the app',
    );
  });
});

describe('backends', () => {
  it('rejects an absolute local state directory', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(() => new Mesh(app, 'shop', { backend: StateBackend.local({ directory: '/var/state' }) })),
    ).toBe(
      '[shop] state backend directory is not valid: "/var/state". ' +
        'Fix: give a directory relative to the project root, so that the output is the same on every machine',
    );
  });

  it('rejects a malformed S3 bucket and region', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(
        () => new Mesh(app, 'a', { backend: StateBackend.s3({ bucket: 'My_Bucket', region: 'eu-west-1' }) }),
      ),
    ).toBe(
      '[a] state backend bucket is not valid: "My_Bucket". Fix: give an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens',
    );
    expect(
      thrownMessage(() => new Mesh(app, 'b', { backend: StateBackend.s3({ bucket: 'state', region: 'europe' }) })),
    ).toBe('[b] state backend region is not valid: "europe". Fix: give an AWS region such as "eu-west-1"');
  });

  it('rejects an empty Terraform Cloud organization', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(() => new Mesh(app, 'a', { backend: StateBackend.terraformCloud({ organization: '' }) })),
    ).toBe('[a] terraformCloud organization must not be empty: "". Fix: set terraformCloud organization');
  });
});
