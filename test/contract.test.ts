import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkAgentConfigKeys } from '../constructs/private/agent-config-keys';
import { consulHelmValues, ConsulHelmValuesInput, serverSecurityConfig } from '../constructs/private/helm-values';
import { defineDefaultMesh } from '../examples/default/main';
import { deriveAll, SHARED_FIXTURES, ValueKind } from '../scripts/derive-fixtures';
import { SECONDARY_INPUT } from './chart-support';
import { helmValues, REPO, synth } from './support';

const CHART_KEYS = (
  JSON.parse(fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'consul-k8s-2.0.3-values-keys.json'), 'utf8')) as {
    keys: { [path: string]: ValueKind };
  }
).keys;

/** Every key path `values` sets that the chart does not have (or sets below a scalar or a list). */
export function unknownChartKeys(values: unknown, keys: { [path: string]: ValueKind } = CHART_KEYS): string[] {
  const problems: string[] = [];
  const visit = (node: unknown, prefix: string) => {
    for (const [key, value] of Object.entries(node as object)) {
      const p = prefix ? `${prefix}.${key}` : key;
      const kind = keys[p];
      if (kind === undefined) problems.push(`${p}: not a key of the chart`);
      else if (kind === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value))
        visit(value, p);
      else if (
        (kind === 'scalar' || kind === 'list') &&
        typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value)
      ) {
        problems.push(`${p}: the chart has a ${kind} here, not a map`);
      }
      // 'map' and 'null' take free-form content
    }
  };
  visit(values, '');
  return problems;
}

/** A secondary with every option: the CA provider's files, a static gateway address and annotations. */
const BASE: ConsulHelmValuesInput = {
  ...SECONDARY_INPUT,
  secrets: {
    ...SECONDARY_INPUT.secrets,
    aclReplicationToken: { secretName: 'e', secretKey: 'token' },
    caProviderSecret: 'f',
  },
  meshGateway: { ...SECONDARY_INPUT.meshGateway, replicas: 2, address: 'mgw.example.com', annotations: { a: 'b' } },
};

if (!fs.existsSync(SHARED_FIXTURES)) {
  console.warn(
    `skipping the derived-fixtures freshness check: ${SHARED_FIXTURES} not found (the committed fixtures are used)`,
  );
}

describe('contract with consul-k8s 2.0.3', () => {
  it('detects keys the chart does not have', () => {
    expect(
      unknownChartKeys({ global: { tls: { enabled: true, verfy: true } }, server: { affinity: { x: 1 } } }),
    ).toEqual(['global.tls.verfy: not a key of the chart', 'server.affinity: the chart has a scalar here, not a map']);
  });

  it('sets only keys of the chart, in every datacenter of the default example', () => {
    const out = synth(defineDefaultMesh);
    const consulStacks = out.stackNames().filter((s) => out.stack(s).resource?.helm_release);
    expect(consulStacks.sort()).toEqual(['shop-aws-us-east', 'shop-gcp-europe-west']);
    for (const stack of consulStacks) expect(unknownChartKeys(helmValues(out.stack(stack))), stack).toEqual([]);
  });

  it.each([
    ['secondary with every option', BASE],
    ['primary', { ...BASE, primary: true, primaryGateways: [], kubernetesApiUrl: undefined }],
    [
      'load balancer without address',
      {
        ...BASE,
        meshGateway: { ...BASE.meshGateway, serviceType: 'LoadBalancer', nodePort: undefined, address: undefined },
      },
    ],
  ])('sets only keys of the chart: %s', (_name, input) => {
    expect(unknownChartKeys(consulHelmValues(input))).toEqual([]);
  });

  it('writes server agent config with keys Consul accepts, none deprecated', () => {
    expect(checkAgentConfigKeys(serverSecurityConfig() as { [key: string]: unknown })).toEqual([]);
    expect(checkAgentConfigKeys({ acl: { tokens: { initial_management: 'x' } } })).toEqual([]);
    expect(checkAgentConfigKeys({ acl: { tokens: { master: 'x' } }, tls: { verify_everything: true } })).toEqual([
      { path: 'acl.tokens.master', problem: 'deprecated' },
      { path: 'tls.verify_everything', problem: 'unknown' },
    ]);
  });

  it.skipIf(!fs.existsSync(SHARED_FIXTURES))('keeps the derived fixtures in step with ../shared/fixtures', () => {
    for (const [file, content] of Object.entries(deriveAll())) {
      expect(fs.readFileSync(path.join(REPO, file), 'utf8'), `${file}: run npm run derive-fixtures`).toBe(content);
    }
  });
});
