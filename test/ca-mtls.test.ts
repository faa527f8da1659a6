import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../constructs/certificate-authority';
import { reconcileCa } from '../constructs/private/ca-material';
import { CertificateKeyAlgorithm } from '../index';
import { issuedMesh, mtls, tlsOf } from './ca-support';

/**
 * Real mutual TLS handshakes (node:tls) between the servers of two datacenters, each side holding only what
 * meshform gives its datacenter: its trust bundle, its chain and key. This is what Consul's cross-datacenter
 * RPC does with verify_incoming, verify_outgoing and verify_server_hostname.
 */
describe('mutual TLS between datacenters', () => {
  it('succeeds in both directions when the datacenters share the hierarchy', async () => {
    // GIVEN
    const { ca, plan } = issuedMesh('shop', ['east', 'west']);
    const east = tlsOf(ca, plan, 'east');
    const west = tlsOf(ca, plan, 'west');
    // WHEN / THEN
    expect(await mtls(east, west, 'server.west.consul')).toEqual({ ok: true });
    expect(await mtls(west, east, 'server.east.consul')).toEqual({ ok: true });
  });

  it('fails when they do not: a server of another mesh, and a client of another mesh', async () => {
    const shop = issuedMesh('shop', ['east']);
    const bank = issuedMesh('bank', ['west']);
    const east = tlsOf(shop.ca, shop.plan, 'east');
    const foreign = tlsOf(bank.ca, bank.plan, 'west');
    // the client refuses a server outside its trust domain
    expect(await mtls(east, foreign, 'server.west.consul')).toMatchObject({
      ok: false,
      clientError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    });
    // the server refuses a client outside its trust domain, even one that trusts the server
    const refused = await mtls({ ...foreign, caBundle: east.caBundle }, east, 'server.east.consul');
    expect(refused).toMatchObject({ ok: false, serverError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
  });

  it("fails when the server presents another datacenter's name (verify_server_hostname)", async () => {
    const { ca, plan } = issuedMesh('shop', ['east', 'west']);
    expect(await mtls(tlsOf(ca, plan, 'east'), tlsOf(ca, plan, 'west'), 'server.east.consul')).toMatchObject({
      ok: false,
      clientError: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('fails with an expired server certificate', async () => {
    // GIVEN certificates issued 400 days ago with a 365-day server lifetime
    const issued = new Date(Date.now() - 400 * 86_400_000);
    const { ca, plan } = issuedMesh('shop', ['east', 'west'], {}, issued);
    expect(await mtls(tlsOf(ca, plan, 'east'), tlsOf(ca, plan, 'west'), 'server.west.consul')).toMatchObject({
      ok: false,
      clientError: 'CERT_HAS_EXPIRED',
    });
  });

  describe('during a root rotation', () => {
    /** GIVEN east still runs its root-1 material while west was deployed with the rotation step. */
    function halfDeployed(crossSign: boolean) {
      const mesh = issuedMesh('shop', ['east', 'west']);
      const eastOld = tlsOf(mesh.ca, mesh.plan, 'east');
      mesh.ca.createRoot('root-2', { keyAlgorithm: CertificateKeyAlgorithm.EC_P256, validityDays: 3650 });
      const plan = CertificateAuthority.offline({
        root: 'root-2',
        previousRoot: 'root-1',
        crossSign,
        allowRotationWithoutCrossSigning: !crossSign,
      }).plan;
      reconcileCa(mesh.ca, plan, mesh.requests, () => undefined);
      return { mesh, plan, eastOld, westNew: tlsOf(mesh.ca, plan, 'west') };
    }

    it('with cross-signing, a datacenter on the old root and one on the new accept each other both ways', async () => {
      const { eastOld, westNew } = halfDeployed(true);
      expect(westNew.caBundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      expect(eastOld.caBundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
      expect(await mtls(eastOld, westNew, 'server.west.consul')).toEqual({ ok: true });
      expect(await mtls(westNew, eastOld, 'server.east.consul')).toEqual({ ok: true });
    });

    it('without cross-signing, the datacenter still on the old root rejects the new chains', async () => {
      const { eastOld, westNew } = halfDeployed(false);
      // east (old bundle) as client refuses west's new chain
      expect(await mtls(eastOld, westNew, 'server.west.consul')).toMatchObject({
        ok: false,
        clientError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      });
      // east (old bundle) as server refuses west's new chain as a client certificate
      const refused = await mtls(westNew, eastOld, 'server.east.consul');
      expect(refused).toMatchObject({ ok: false, serverError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    });

    it('after the previous root is retired, old chains are refused: every datacenter must be deployed first', async () => {
      const { mesh, eastOld } = halfDeployed(true);
      const finished = CertificateAuthority.offline({ root: 'root-2' }).plan;
      reconcileCa(mesh.ca, finished, mesh.requests, () => undefined);
      const westFinal = tlsOf(mesh.ca, finished, 'west');
      expect(westFinal.caBundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
      expect(await mtls(eastOld, westFinal, 'server.west.consul')).toMatchObject({
        ok: false,
        clientError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      });
      expect(await mtls({ ...eastOld, caBundle: westFinal.caBundle }, westFinal, 'server.west.consul')).toMatchObject({
        ok: false,
        serverError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      });
      // and the datacenters that were deployed keep talking
      expect(await mtls(tlsOf(mesh.ca, finished, 'east'), westFinal, 'server.west.consul')).toEqual({ ok: true });
    });
  });
});
