import { Manifest } from '@cdktf/provider-kubernetes/lib/manifest';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import {
  App,
  Aspects,
  Lazy,
  TerraformVariable,
  Testing,
  Token,
  withShortTokenStacks,
} from '../constructs/private/engine';
import { KubernetesCluster, KubernetesDatacenter, Mesh, Service, ServiceProtocol } from '../index';
import { synth } from './support';

/** The ids and objects of a stack's children, in order. */
const children = (dc: KubernetesDatacenter) => dc.configStack!.node.children.map((c) => [c.node.id, c] as const);

describe('config entries follow each declaration incrementally', () => {
  it('leaves the config stack exactly as a full rebuild from every service would', () => {
    // GIVEN services declared before and after the primary, relations added out of declaration order
    const app = new App({ stackTraces: false });
    const mesh = new Mesh(app, 'm');
    const west = new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'w', apiServerUrl: 'https://203.0.113.9' }),
    });
    const early = new Service(mesh, 'early', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [west] });
    const east = new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'e' }),
      meshGateway: { address: 'mgw.example.com' },
    });
    const db = new Service(mesh, 'db', {
      port: 5432,
      datacenters: [east],
      circuitBreaker: { maxConnections: 10 },
    });
    const api = new Service(mesh, 'api', { port: 90, protocol: ServiceProtocol.HTTP, connectTimeoutMs: 500 });
    api.runsIn(west).addUpstream(db).addSubset({ name: 'v2', filter: 'Service.Meta.version == v2' });
    early.addUpstream(api).allowFrom(api);
    db.allowFrom(api).allowFrom(early);
    api.splitTraffic([{ weight: 100, subset: 'v2' }]).runsIn(east);
    const before = children(east);

    // WHEN the stack is rebuilt from the whole mesh (what every declaration did before it was incremental)
    east._meshChanged();

    // THEN nothing is created, replaced, removed or moved
    expect(children(east)).toEqual(before);
    expect(before.map(([id]) => id)).toEqual(
      expect.arrayContaining([
        'ServiceDefaults-api',
        'ServiceDefaults-early',
        'ServiceResolver-api',
        'ServiceSplitter-api',
        'ServiceIntentions-db',
        'ServiceIntentions-early',
      ]),
    );
  });
});

/** A mesh with one Kubernetes datacenter (the primary) and three HTTP services, `api` calling `db`. */
function threeServices(app: App): KubernetesDatacenter {
  const mesh = new Mesh(app, 'm');
  const dc = new KubernetesDatacenter(mesh, 'east', {
    primary: true,
    cluster: KubernetesCluster.fromKubeconfig({ context: 'e' }),
    meshGateway: { address: 'mgw.example.com' },
  });
  const db = new Service(mesh, 'db', { port: 5432, protocol: ServiceProtocol.HTTP, datacenters: [dc] });
  const api = new Service(mesh, 'api', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [dc] });
  new Service(mesh, 'web', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [dc], connectTimeoutMs: 500 });
  api.addUpstream(db);
  db.allowFrom(api);
  return dc;
}

describe('config entry blocks written as literal data', () => {
  it('keep every override, aspect and token a user puts in them', () => {
    // GIVEN a config stack whose entries a user changes every way cdktf offers
    const out = synth((app) => {
      const dc = threeServices(app);
      const config = dc.configStack!;
      const entry = (id: string) => config.node.findChild(id) as Manifest;
      // an override into one entry's manifest, a token put in another's by an override
      entry('ServiceDefaults-db').addOverride('manifest.spec.protocol', 'grpc');
      const owner = new TerraformVariable(config, 'owner', { type: 'string' });
      entry('ServiceDefaults-api').addOverride('manifest.metadata.labels.owner', owner.stringValue);
      // an override of the stack that reaches into an entry
      config.addOverride('resource.kubernetes_manifest.ServiceResolver-web.manifest.spec.connectTimeout', '1s');
      // an aspect that replaces a manifest with one holding a token
      Aspects.of(config).add({
        visit: (node: IConstruct) => {
          if (node instanceof Manifest && node.node.id === 'ServiceDefaults-web') {
            node.manifest = {
              apiVersion: 'consul.hashicorp.com/v1alpha1',
              kind: 'ServiceDefaults',
              metadata: { name: 'web', namespace: Lazy.stringValue({ produce: () => 'mesh' }) },
              spec: { protocol: 'http' },
            };
          }
        },
      });
    });

    // WHEN the config stack is read back
    const manifests = out.stack('m-east-config').resource!.kubernetes_manifest as {
      [id: string]: { manifest: { metadata: { labels: object; namespace: string }; spec: object } };
    };

    // THEN each change is in the written block
    expect(manifests['ServiceDefaults-db']!.manifest.spec).toEqual({ protocol: 'grpc' });
    expect(manifests['ServiceDefaults-api']!.manifest.metadata.labels).toMatchObject({ owner: '${var.owner}' });
    expect(manifests['ServiceResolver-web']!.manifest.spec).toEqual({ connectTimeout: '1s' });
    expect(manifests['ServiceDefaults-web']!.manifest.metadata).toEqual({ name: 'web', namespace: 'mesh' });
    // AND an entry nobody changed is written as declared
    expect(manifests['ServiceIntentions-db']).toEqual({
      '//': { metadata: { path: 'm/east/m-east-config/ServiceIntentions-db', uniqueId: 'ServiceIntentions-db' } },
      computed_fields: ['metadata.annotations', 'metadata.labels', 'status'],
      manifest: {
        apiVersion: 'consul.hashicorp.com/v1alpha1',
        kind: 'ServiceIntentions',
        metadata: {
          name: 'db',
          namespace: 'consul',
          labels: { 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': 'm' },
        },
        spec: { destination: { name: 'db' }, sources: [{ name: 'api', action: 'allow' }] },
      },
    });
  });

  it('come out of Testing.synth and of two syntheses the same, with no placeholder left', () => {
    // GIVEN a mesh's config stack
    const app = new App({ stackTraces: false });
    const config = threeServices(app).configStack!;
    // WHEN it is synthesized twice by cdktf's test helper
    const first = Testing.synth(config);
    const second = Testing.synth(config);
    // THEN both are the same, hold every entry and no placeholder
    expect(second).toEqual(first);
    expect(first).not.toContain('meshform-literal');
    expect(Object.keys(JSON.parse(first).resource.kubernetes_manifest)).toHaveLength(7);
  });
});

describe('withShortTokenStacks', () => {
  it('records no creation stack for the tokens cdktf makes inside, and restores the capture after', () => {
    // GIVEN the stack capture in place
    const capture = Error.captureStackTrace;
    // WHEN a token is made inside and another outside
    const inside = withShortTokenStacks(() => Token.asAny(Lazy.anyValue({ produce: () => 1 })));
    const outside = Token.asAny(Lazy.anyValue({ produce: () => 1 }));
    const error = withShortTokenStacks(() => new Error('inside'));
    // THEN the one inside has no creation stack, the one outside has cdktf's full one
    expect((inside as unknown as { creationStack: string[] }).creationStack).toEqual([]);
    expect((outside as unknown as { creationStack: string[] }).creationStack.length).toBeGreaterThan(0);
    // AND an error made inside keeps its stack, and the capture is V8's again
    expect(error.stack).toContain('config-sync.test.ts');
    expect(Error.captureStackTrace).toBe(capture);
  });
});
