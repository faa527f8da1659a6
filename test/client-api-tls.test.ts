import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reconcileMeshCa } from '../cli/ca';
import { secretValues } from '../cli/secrets';
import { CLIENT_API_NAMES, inspectCa } from '../constructs/private/ca-material';
import { parseHcl } from '../constructs/private/hcl';
import { certificateFacts } from '../constructs/private/x509';
import { defineHybridMesh } from '../examples/hybrid/main';
import { SecretStore } from '../index';
import { issuedMesh, mtls, opensslVerify, tlsOf } from './ca-support';
import { FakeConsul, ownHostRoot, runNode } from './host-support';
import { Synthesized, synth, tempDir } from './support';

const NO_PYTHON = spawnSync('python3', ['--version']).error ? 'python3 not found' : undefined;
if (NO_PYTHON) console.warn(`skipping client API TLS tests: ${NO_PYTHON}`);

/**
 * What a client agent's HTTPS listener serves (hashicorp/consul v2.0.3 tlsutil/config.go, commonTLSConfig's
 * GetCertificate for IncomingHTTPSConfig): the certificate configured for the protocol (tls.https.cert_file and
 * key_file, or tls.defaults'), and only without one the auto-encrypt certificate, which the service mesh CA
 * signs. These tests present what the host's configuration makes Consul serve and dial it as the local callers
 * do, trusting only the host's ca.pem.
 */
describe('the local HTTPS API of VM client agents', () => {
  let out: Synthesized;
  let project: { dir: string; outdir: string; storeDir: string };
  let store: SecretStore;
  let consul: FakeConsul | undefined;

  beforeAll(() => {
    // GIVEN the hybrid example synthesized in a project whose store issued the mesh's certificates
    const dir = tempDir('meshform-project-');
    fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ app: 'true' }));
    out = synth(defineHybridMesh, path.join(dir, 'cdktf.out'));
    const storeDir = path.join(dir, 'store');
    store = SecretStore.open({ directory: storeDir });
    store.ensure('bank');
    reconcileMeshCa(store, out.mesh('bank'), () => undefined);
    project = { dir, outdir: out.outdir, storeDir };
  }, 600_000);

  afterEach(() => consul?.stop());

  /** GIVEN a service host with its delivered secrets installed: what its agent's HTTPS listener serves. */
  function clientHost(host: string) {
    const root = ownHostRoot(project, 'bank', 'on-premises', host);
    expect(
      spawnSync('python3', [path.join(root, 'usr/local/sbin/meshform-node'), 'secrets'], {
        env: { ...process.env, MESHFORM_ROOT: root },
      }).status,
    ).toBe(0);
    const config = parseHcl(fs.readFileSync(path.join(root, 'etc/consul.d/consul.hcl'), 'utf8')) as {
      tls: { defaults: { ca_file: string; cert_file?: string }; https: { cert_file: string; key_file: string } };
      auto_encrypt: { tls: boolean };
    };
    const onHost = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
    return {
      root,
      config,
      served: { cert: onHost(config.tls.https.cert_file), key: onHost(config.tls.https.key_file) },
      trusted: onHost(config.tls.defaults.ca_file),
    };
  }

  /** A one-way TLS handshake: a listener presenting `served`, dialed at 127.0.0.1 by a client trusting `trusted` only. */
  function dial(served: { cert: string; key: string }, trusted: string, host = '127.0.0.1'): Promise<string> {
    return new Promise((resolve) => {
      const listener = tls.createServer({ cert: served.cert, key: served.key }, (s) => s.end('ok'));
      listener.listen(0, '127.0.0.1', () => {
        const { port } = listener.address() as AddressInfo;
        const socket = tls.connect({ host, port, ca: trusted, ...(host === 'localhost' ? { servername: host } : {}) });
        const done = (result: string) => {
          listener.close();
          resolve(result);
        };
        socket.on('data', () => done('ok'));
        socket.on('error', (e: Error & { code?: string }) => done(e.code ?? e.message));
      });
    });
  }

  it('serves a certificate of the mesh, which a caller trusting only the host trust file accepts at 127.0.0.1 and localhost', async () => {
    const host = clientHost('mainframe-bridge-1');
    // the client agent keeps auto-encrypt for its RPC, and serves HTTPS with the certificate meshform issued
    expect(host.config.auto_encrypt).toEqual({ tls: true });
    expect(host.config.tls.https).toMatchObject({ cert_file: '/etc/consul.d/tls/client-api.pem' });
    expect(host.config.tls.defaults.cert_file).toBeUndefined();
    // `consul connect envoy -http-addr https://127.0.0.1:8501 -ca-file <ca.pem>` verifies the IP name
    expect(await dial(host.served, host.trusted)).toBe('ok');
    expect(await dial(host.served, host.trusted, 'localhost')).toBe('ok');
    expect(opensslVerify(host.trusted, host.served.cert).output).toMatch(/: OK$/);
  });

  it("lets meshform-node register the host's service through it (verified TLS), and refuses a certificate of another CA (what auto-encrypt alone serves)", async () => {
    const host = clientHost('mainframe-bridge-1');
    // WHEN the local API serves the client API certificate
    consul = new FakeConsul({ chainPem: host.served.cert, keyPem: host.served.key });
    const address = await consul.start();
    const result = await runNode(host.root, ['register-service', 'mainframe-bridge'], {
      MESHFORM_CONSUL_HTTP_ADDR: address,
    });
    // THEN the registration goes through
    expect(result.status, result.stderr).toBe(0);
    expect(consul.registered.map((s) => s.Name)).toEqual(['mainframe-bridge']);
    consul.stop();
    // AND a listener presenting a certificate of another CA (standing in for the auto-encrypt leaf, signed by the
    // service mesh CA the host's trust file does not hold) is refused at once
    const other = issuedMesh('connect-ca', ['on-premises']);
    consul = new FakeConsul({
      chainPem: tlsOf(other.ca, other.plan, 'on-premises').serverChain,
      keyPem: tlsOf(other.ca, other.plan, 'on-premises').serverKey,
    });
    const impostor = await consul.start();
    const refused = await runNode(host.root, ['register-service', 'mainframe-bridge'], {
      MESHFORM_CONSUL_HTTP_ADDR: impostor,
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("the local agent's certificate does not verify against the mesh's CA bundle");
    expect(consul.registered).toEqual([]);
  });

  it('cannot pass for a server, nor act as a client certificate towards the servers (loopback names, server authentication only)', async () => {
    const facts = certificateFacts(clientHost('mainframe-bridge-1').served.cert);
    expect(facts.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    // a server of the datacenter (verify_incoming on internal RPC) refuses it as a client certificate
    const dc = tlsOf(store.ca('bank'), out.mesh('bank').ca.plan, 'on-premises');
    const clientApi = store.ca('bank').clientApi('on-premises')!;
    const handshake = await mtls(
      { caBundle: dc.caBundle, serverChain: clientApi.chainPem, serverKey: clientApi.keyPem },
      dc,
      'server.on-premises.consul',
    );
    expect(handshake).toMatchObject({ ok: false, serverError: 'INVALID_PURPOSE' });
  });

  it("is issued with the server certificate for VM datacenters only, inspected, and exported as their stacks' variables", () => {
    const mesh = out.mesh('bank');
    expect(mesh.ca.requests.map((r) => [r.datacenter, r.clientApi ?? false])).toEqual([
      ['kubernetes', false],
      ['vms', true],
      ['on-premises', true],
    ]);
    const ca = store.ca('bank');
    expect(ca.clientApi('kubernetes')).toBeUndefined();
    const status = inspectCa(ca, mesh.ca.plan, mesh.ca.requests);
    expect(status.certificates.filter((c) => c.role.startsWith('client-api')).map((c) => [c.role, c.state])).toEqual([
      ['client-api vms', 'ok'],
      ['client-api on-premises', 'ok'],
    ]);
    const variables = secretValues(store, mesh).map((v) => v.variable);
    expect(variables.filter((v) => v.includes('client_api'))).toEqual([
      'meshform_bank_vms_client_api_cert',
      'meshform_bank_vms_client_api_key',
      'meshform_bank_on_premises_client_api_cert',
      'meshform_bank_on_premises_client_api_key',
    ]);
    expect(CLIENT_API_NAMES.dnsNames).toEqual(['localhost']);
    // the EC2 datacenter's stack declares them and hands them to its client and gateway hosts only
    const stack = out.stack('bank-vms');
    expect(Object.keys(stack.variable!).filter((v) => v.includes('client_api'))).toEqual([
      'meshform_bank_vms_client_api_cert',
      'meshform_bank_vms_client_api_key',
    ]);
    const versions = Object.entries(stack.resource!.aws_secretsmanager_secret_version!);
    for (const [id, version] of versions)
      expect(String(version.secret_string_wo).includes('var.meshform_bank_vms_client_api_key'), id).toBe(
        !id.includes('server'),
      );
    expect(Object.keys(out.stack('bank-kubernetes').variable!).filter((v) => v.includes('client_api'))).toEqual([]);
  });
});
