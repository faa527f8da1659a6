import { describe, expect, it } from 'vitest';
import { App } from '../constructs/private/engine';
import { KubernetesCluster, KubernetesDatacenter, Mesh, Service, ServiceProtocol } from '../index';

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
