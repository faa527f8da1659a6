import { describe, expect, it } from 'vitest';
import {
  KubernetesCluster,
  KubernetesDatacenter,
  Mesh,
  StateBackend,
  TerraformCloudExecutionMode,
  TerraformCloudStateBackendOptions,
} from '../index';
import { synth, thrownMessage } from './support';

/** GIVEN helper: a kubeconfig primary whose stacks keep their state on Terraform Cloud with `options`. */
function onTerraformCloud(options: Partial<TerraformCloudStateBackendOptions>) {
  return () =>
    synth((app) => {
      const backend = StateBackend.terraformCloud({ organization: 'acme', ...options });
      const mesh = new Mesh(app, 'shop', { backend });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east-admin' }),
        meshGateway: { address: 'mgw.example.com' },
      });
    });
}

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
        executionMode: TerraformCloudExecutionMode.LOCAL,
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

  it("refuses a kubeconfig cluster on a workspace that runs remotely (Terraform Cloud's default): its runners have no kubeconfig", () => {
    expect(thrownMessage(onTerraformCloud({ workspacePrefix: 'mesh-' }))).toBe(
      '[shop/east] the Terraform Cloud workspace "mesh-shop-east" runs remotely (execution mode "remote"), where the kubeconfig ' +
        'context this datacenter reaches its cluster through does not exist: "east-admin". ' +
        'Fix: run the workspace locally: `StateBackend.terraformCloud({ ..., executionMode: TerraformCloudExecutionMode.LOCAL })` ' +
        "and set the workspace's execution mode to Local in Terraform Cloud; or run it on your own agent that holds " +
        'this kubeconfig and the credentials it uses (`executionMode: TerraformCloudExecutionMode.AGENT`)',
    );
    expect(thrownMessage(onTerraformCloud({ executionMode: TerraformCloudExecutionMode.REMOTE }))).toContain(
      'runs remotely',
    );
  });

  it('accepts a kubeconfig cluster on a workspace run locally or on your own agent', () => {
    for (const executionMode of [TerraformCloudExecutionMode.LOCAL, TerraformCloudExecutionMode.AGENT]) {
      expect(onTerraformCloud({ executionMode })().stack('shop-east').terraform.cloud).toEqual({
        organization: 'acme',
        workspaces: { name: 'shop-east' },
      });
    }
  });

  it('accepts an EKS cluster meshform creates on a remote workspace (reached through AWS, not a kubeconfig)', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop', { backend: StateBackend.terraformCloud({ organization: 'acme' }) });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16' }),
      });
    });
    expect(out.stack('shop-east').terraform.cloud).toEqual({ organization: 'acme', workspaces: { name: 'shop-east' } });
  });
});
