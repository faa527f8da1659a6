import { describe, expect, it } from 'vitest';
import { KubernetesCluster, KubernetesDatacenter, Mesh, StateBackend } from '../index';
import { synth } from './support';

describe('state backends', () => {
  it('writes an S3 backend per stack: encrypted, own key, S3 lock file by default', () => {
    // GIVEN
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop', { backend: StateBackend.s3({ bucket: 'acme-tfstate', region: 'eu-west-1' }) });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      });
    });
    // THEN
    expect(out.stack('shop-east').terraform.backend).toEqual({
      s3: {
        bucket: 'acme-tfstate',
        key: 'meshform/shop-east.tfstate',
        region: 'eu-west-1',
        encrypt: true,
        use_lockfile: true,
      },
    });
  });

  it('uses a DynamoDB lock table and a KMS key when given', () => {
    const out = synth((app) => {
      const backend = StateBackend.s3({
        bucket: 'acme-tfstate',
        region: 'eu-west-1',
        keyPrefix: 'mesh',
        dynamodbTable: 'locks',
        kmsKeyId: 'alias/state',
      });
      const mesh = new Mesh(app, 'shop', { backend });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      });
    });
    expect(out.stack('shop-east').terraform.backend).toEqual({
      s3: {
        bucket: 'acme-tfstate',
        key: 'mesh/shop-east.tfstate',
        region: 'eu-west-1',
        encrypt: true,
        dynamodb_table: 'locks',
        kms_key_id: 'alias/state',
      },
    });
  });

  it('gives every stack its own named Terraform Cloud workspace', () => {
    const out = synth((app) => {
      const backend = StateBackend.terraformCloud({
        organization: 'acme',
        workspacePrefix: 'mesh-',
        project: 'network',
      });
      const mesh = new Mesh(app, 'shop', { backend });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        meshGateway: { address: 'mgw.example.com' },
      });
      new KubernetesDatacenter(mesh, 'west', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.1' }),
      });
    });
    expect(out.stack('shop-east').terraform.cloud).toEqual({
      organization: 'acme',
      workspaces: { name: 'mesh-shop-east', project: 'network' },
    });
    expect(out.stack('shop-west').terraform.cloud).toEqual({
      organization: 'acme',
      workspaces: { name: 'mesh-shop-west', project: 'network' },
    });
    expect(out.stack('shop-west').terraform.backend).toBeUndefined();
  });

  it('lets one datacenter choose its own backend', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop', { backend: StateBackend.local({ directory: 'state' }) });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        meshGateway: { address: 'mgw.example.com' },
      });
      new KubernetesDatacenter(mesh, 'west', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.1' }),
        backend: StateBackend.s3({ bucket: 'west-state', region: 'eu-central-1' }),
      });
    });
    expect(out.stack('shop-east').terraform.backend).toEqual({
      local: { path: '../../../state/terraform.shop-east.tfstate' },
    });
    expect(out.stack('shop-west').terraform.backend).toMatchObject({
      s3: { bucket: 'west-state', key: 'meshform/shop-west.tfstate' },
    });
    expect(out.mesh('shop').datacenters.map((d) => d.stacks[0]!.state)).toEqual([
      'local (state/terraform.shop-east.tfstate)',
      's3 (s3://west-state/meshform/shop-west.tfstate)',
    ]);
  });
});
