import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CertificateKeyAlgorithm } from '../index';
import { reconcileCa } from '../constructs/private/ca-material';
import { certificateFacts, splitPem } from '../constructs/private/x509';
import { CertificateAuthority } from '../constructs/certificate-authority';
import { file, issuedMesh, opensslText, opensslVerify, request } from './ca-support';

const DAY = 86_400_000;

describe('chains meshform issues, checked by openssl', () => {
  it('verifies every datacenter chain against its trust bundle alone, as server and as client', () => {
    // GIVEN a mesh with three datacenters
    const { ca, plan } = issuedMesh('shop', ['east', 'west', 'vms']);
    for (const dc of ['east', 'west', 'vms']) {
      // WHEN
      const server = ca.server(dc)!;
      const bundle = ca.rootCertificate(plan.root)!;
      // THEN the chain is leaf + intermediate, and it verifies for both purposes Consul uses it for
      expect(splitPem(server.chainPem)).toHaveLength(2);
      expect(opensslVerify(bundle, server.chainPem, 'sslserver')).toEqual({
        ok: true,
        output: expect.stringMatching(/: OK$/),
      });
      expect(opensslVerify(bundle, server.chainPem, 'sslclient')).toEqual({
        ok: true,
        output: expect.stringMatching(/: OK$/),
      });
      // and the intermediate against the root
      expect(opensslVerify(bundle, ca.intermediate(dc)!.certificatePem, 'any').ok).toBe(true);
    }
  });

  it('does not verify a chain of one mesh against the roots of another', () => {
    const shop = issuedMesh('shop', ['east']);
    const bank = issuedMesh('bank', ['east']);
    const result = opensslVerify(bank.ca.rootCertificate('root-1')!, shop.ca.server('east')!.chainPem);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('unable to get local issuer certificate');
  });

  it('does not verify a server certificate without its intermediate: the bundle holds roots only', () => {
    const { ca } = issuedMesh('shop', ['east']);
    const [leaf] = splitPem(ca.server('east')!.chainPem);
    const result = opensslVerify(ca.rootCertificate('root-1')!, leaf!);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('unable to get local issuer certificate');
  });

  it('marks roots and intermediates as CAs (intermediates issue leaves only) and servers as leaves with both TLS purposes', () => {
    const { ca } = issuedMesh('shop', ['east']);
    const root = opensslText(ca.rootCertificate('root-1')!);
    expect(root).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(root).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(root).toContain('Subject: O = meshform, CN = shop mesh root root-1');
    const intermediate = opensslText(ca.intermediate('east')!.certificatePem);
    expect(intermediate).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(intermediate).toContain('Issuer: O = meshform, CN = shop mesh root root-1');
    expect(intermediate).toContain('Subject: O = meshform, CN = shop east intermediate (root-1)');
    const leaf = opensslText(splitPem(ca.server('east')!.chainPem)[0]!);
    expect(leaf).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(leaf).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(leaf).toContain('Subject: CN = server.east.consul');
    expect(leaf).toMatch(/Authority Key Identifier:/);
  });

  it('gives each server certificate the names Consul checks: server.<dc>.<domain>, its wildcard, localhost, loopback and host IPs', () => {
    const { ca, plan } = issuedMesh('shop', []);
    reconcileCa(ca, plan, [request('east', ['10.0.1.10', 'fd00::10'])], () => undefined);
    const sans = execFileSync(
      'openssl',
      ['x509', '-noout', '-ext', 'subjectAltName', '-in', file('s.pem', ca.server('east')!.chainPem)],
      { encoding: 'utf8' },
    );
    expect(sans).toContain(
      'DNS:server.east.consul, DNS:*.server.east.consul, DNS:localhost, DNS:consul-server, DNS:*.consul-server.consul.svc, ' +
        'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.0.1.10, IP Address:FD00:0:0:0:0:0:0:10',
    );
  });

  it('orders lifetimes leaf < intermediate < root, as configured', () => {
    const now = new Date('2026-11-22T12:00:00Z');
    const { ca } = issuedMesh(
      'shop',
      ['east'],
      {
        rootValidityDays: 1000,
        intermediateValidityDays: 500,
        serverCertificateValidityDays: 100,
        rotationWindowDays: 30,
      },
      now,
    );
    const root = certificateFacts(ca.rootCertificate('root-1')!);
    const intermediate = certificateFacts(ca.intermediate('east')!.certificatePem);
    const leaf = certificateFacts(splitPem(ca.server('east')!.chainPem)[0]!);
    expect(root.notAfter.toISOString()).toBe(new Date(now.getTime() + 1000 * DAY).toISOString());
    expect(intermediate.notAfter.toISOString()).toBe(new Date(now.getTime() + 500 * DAY).toISOString());
    expect(leaf.notAfter.toISOString()).toBe(new Date(now.getTime() + 100 * DAY).toISOString());
    for (const facts of [root, intermediate, leaf])
      expect(facts.notBefore.toISOString()).toBe('2026-11-22T11:59:00.000Z');
  });

  it.each([
    [CertificateKeyAlgorithm.EC_P256, /Public-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/, /ecdsa-with-SHA256/],
    [CertificateKeyAlgorithm.EC_P384, /Public-Key: \(384 bit\)[\s\S]*NIST CURVE: P-384/, /ecdsa-with-SHA384/],
    [CertificateKeyAlgorithm.RSA_2048, /Public-Key: \(2048 bit\)/, /sha256WithRSAEncryption/],
  ])('issues %s keys everywhere, and openssl verifies the chain', (algorithm, key, signature) => {
    const { ca } = issuedMesh('shop', ['east'], { keyAlgorithm: algorithm });
    for (const pem of [
      ca.rootCertificate('root-1')!,
      ca.intermediate('east')!.certificatePem,
      splitPem(ca.server('east')!.chainPem)[0]!,
    ]) {
      const text = opensslText(pem);
      expect(text).toMatch(key);
      expect(text).toMatch(signature);
    }
    expect(opensslVerify(ca.rootCertificate('root-1')!, ca.server('east')!.chainPem).ok).toBe(true);
  });

  describe('root rotation with cross-signing', () => {
    /** GIVEN a mesh on root-1, then the rotation step to root-2. */
    function rotated() {
      const mesh = issuedMesh('shop', ['east', 'west']);
      const before = { bundle: mesh.ca.rootCertificate('root-1')!, eastChain: mesh.ca.server('east')!.chainPem };
      mesh.ca.createRoot('root-2', { keyAlgorithm: CertificateKeyAlgorithm.EC_P256, validityDays: 3650 });
      const plan = CertificateAuthority.offline({ root: 'root-2', previousRoot: 'root-1' }).plan;
      reconcileCa(mesh.ca, plan, mesh.requests, () => undefined);
      return { ...mesh, before, plan };
    }

    it("issues a cross-signed root that carries the new root's subject and key, signed by the old root", () => {
      const { ca } = rotated();
      const cross = ca.crossCertificate('root-2')!;
      const text = opensslText(cross);
      expect(text).toContain('Issuer: O = meshform, CN = shop mesh root root-1');
      expect(text).toContain('Subject: O = meshform, CN = shop mesh root root-2');
      expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
      const pubkey = (pem: string) =>
        execFileSync('openssl', ['x509', '-noout', '-pubkey', '-in', file('c.pem', pem)], { encoding: 'utf8' });
      expect(pubkey(cross)).toBe(pubkey(ca.rootCertificate('root-2')!));
      expect(opensslVerify(ca.rootCertificate('root-1')!, cross, 'any').ok).toBe(true);
    });

    it('gives new chains that verify against the old root alone (datacenters not yet deployed) and against the new root', () => {
      const { ca } = rotated();
      const chain = ca.server('west')!.chainPem;
      expect(splitPem(chain)).toHaveLength(3);
      expect(opensslVerify(ca.rootCertificate('root-1')!, chain).ok).toBe(true);
      expect(opensslVerify(ca.rootCertificate('root-2')!, chain).ok).toBe(true);
    });

    it('keeps old chains verifiable by datacenters already on the new bundle (both roots)', () => {
      const { ca, before, plan } = rotated();
      const bundle = [plan.root, plan.previousRoot!].map((id) => ca.rootCertificate(id)!).join('');
      expect(opensslVerify(bundle, before.eastChain).ok).toBe(true);
    });

    it('without cross-signing, new chains do not verify against the old root', () => {
      const mesh = issuedMesh('shop', ['east']);
      mesh.ca.createRoot('root-2', { keyAlgorithm: CertificateKeyAlgorithm.EC_P256, validityDays: 3650 });
      const plan = CertificateAuthority.offline({
        root: 'root-2',
        previousRoot: 'root-1',
        crossSign: false,
        allowRotationWithoutCrossSigning: true,
      }).plan;
      reconcileCa(mesh.ca, plan, mesh.requests, () => undefined);
      const chain = mesh.ca.server('east')!.chainPem;
      expect(splitPem(chain)).toHaveLength(2);
      const result = opensslVerify(mesh.ca.rootCertificate('root-1')!, chain);
      expect(result.ok).toBe(false);
      expect(result.output).toContain('unable to get local issuer certificate');
    });
  });

  it('signs a Vault root mount request as a CA under the offline root; openssl verifies it and keeps the requested subject', () => {
    // GIVEN a CSR as `vault write pki/intermediate/generate/internal` would produce it
    const { ca } = issuedMesh('shop', []);
    const csr = file('vault.csr', '');
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        file('vault-key.pem', ''),
        '-subj',
        '/O=Acme/CN=payments connect root',
        '-out',
        csr,
      ],
      { stdio: 'pipe' },
    );
    // WHEN
    const signed = ca.signRequest(
      execFileSync('cat', [csr], { encoding: 'utf8' }),
      'root-1',
      { validityDays: 400 },
      () => undefined,
    );
    // THEN the output is the certificate and the root, and the certificate is a CA that may issue intermediates
    const [certificate, root] = splitPem(signed);
    expect(root).toBe(ca.rootCertificate('root-1'));
    const text = opensslText(certificate!);
    expect(text).toContain('Subject: O = Acme, CN = payments connect root');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(opensslVerify(root!, certificate!, 'any').ok).toBe(true);
    expect(
      execFileSync('openssl', ['x509', '-noout', '-pubkey', '-in', file('c.pem', certificate!)], { encoding: 'utf8' }),
    ).toBe(execFileSync('openssl', ['req', '-noout', '-pubkey', '-in', csr], { encoding: 'utf8' }));
  });
});
