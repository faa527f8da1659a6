import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../constructs/certificate-authority';
import { CaMaterialError } from '../constructs/errors';
import { inspectCa, reconcileCa } from '../constructs/private/ca-material';
import { certificateFacts, splitPem } from '../constructs/private/x509';
import { CertificateKeyAlgorithm, KubernetesCluster, KubernetesDatacenter, Mesh } from '../index';
import { issuedMesh, opensslRoot, request } from './ca-support';
import { readTree, synth, thrownMessage } from './support';

const DAY = 86_400_000;
const NOW = new Date('2026-11-22T12:00:00Z');
const days = (n: number) => new Date(NOW.getTime() + n * DAY);

/** The store's files, to show that a refused step changed nothing. */
function snapshot(storeDir: string): Map<string, string> {
  return readTree(storeDir);
}

describe('CA material checks (synth and CLI)', () => {
  describe('roots', () => {
    // a root of 100 days, certificates shorter, rotation window 30 days
    const SHORT = {
      rootValidityDays: 100,
      intermediateValidityDays: 60,
      serverCertificateValidityDays: 40,
      rotationWindowDays: 30,
    };

    it('refuses a root that expires inside the rotation window, naming when and what to do', () => {
      const { ca, plan, requests } = issuedMesh('shop', ['east'], SHORT, NOW);
      const notAfter = certificateFacts(ca.rootCertificate('root-1')!).notAfter.toISOString();
      expect(notAfter).toBe('2027-03-02T12:00:00.000Z');
      const inspection = inspectCa(ca, plan, requests, days(75));
      expect(inspection.errors.map((e) => e.message)).toEqual([
        `[shop root root-1] the root expires in 25 days (${notAfter}), inside the rotation window of 30 days. ` +
          'Fix: rotate it now: `meshform ca rotate --root`, then follow the printed steps',
      ]);
      expect(inspection.certificates.find((c) => c.role === 'root root-1')).toMatchObject({
        state: 'due',
        daysLeft: 25,
      });
      expect(() => reconcileCa(ca, plan, requests, () => undefined, days(75))).toThrow(CaMaterialError);
    });

    it('refuses an expired root: it cannot even cross-sign its successor', () => {
      const { ca, plan, requests } = issuedMesh('shop', ['east'], SHORT, NOW);
      const inspection = inspectCa(ca, plan, requests, days(101));
      expect(inspection.errors[0]!.message).toBe(
        '[shop root root-1] the root expired on 2027-03-02T12:00:00.000Z. ' +
          'Fix: an expired root cannot cross-sign: `meshform ca rotate --root --no-cross-sign --force`, then deploy every datacenter',
      );
      expect(inspection.certificates.find((c) => c.role === 'root root-1')!.state).toBe('expired');
    });

    it('refuses a root that is not valid yet (a clock behind, or a root from the future)', () => {
      const { ca, plan, requests } = issuedMesh('shop', ['east'], {}, NOW);
      const inspection = inspectCa(ca, plan, requests, days(-1));
      expect(inspection.errors.map((e) => e.code)).toContain('not-yet-valid');
      expect(inspection.errors.find((e) => e.code === 'not-yet-valid')!.message).toBe(
        "[shop root root-1] the certificate is not valid before 2026-11-22T11:59:00.000Z (check this machine's clock). " +
          'Fix: replace it: `meshform ca rotate --root`, or import a valid root',
      );
    });

    it('refuses a root whose certificate was replaced by one with another key', () => {
      const { store, ca, plan, requests } = issuedMesh('shop', ['east']);
      const other = issuedMesh('other', []);
      fs.copyFileSync(
        path.join(other.store.meshDirectory('other'), 'ca', 'roots', 'root-1', 'certificate.pem'),
        path.join(store.meshDirectory('shop'), 'ca', 'roots', 'root-1', 'certificate.pem'),
      );
      // the intermediates no longer chain to the (new) root certificate: another trust domain
      expect(inspectCa(ca, plan, requests).errors.map((e) => e.code)).toEqual(['trust-domain-mismatch']);
      // and signing with the root refuses the key that does not match
      expect(thrownMessage(() => ca.rootKey('root-1', () => undefined))).toBe(
        `[shop root root-1] the private key does not match the certificate. Fix: restore ${path.join(store.meshDirectory('shop'), 'ca', 'roots', 'root-1', 'key.pem')} and certificate.pem together from your offline backup`,
      );
    });

    describe('import', () => {
      const options = { passphrase: 'correct horse battery', rotationWindowDays: 90 };

      it('brings in a root made elsewhere (openssl, consul tls ca create) and issues under it', () => {
        const { ca } = issuedMesh('shop', []);
        const root = opensslRoot({ ca: true });
        ca.importRoot('corp-1', root.certificate, root.key, options);
        const plan = CertificateAuthority.offline({ root: 'corp-1' }).plan;
        reconcileCa(ca, plan, [request('east')], (id) => (id === 'corp-1' ? options.passphrase : undefined));
        expect(certificateFacts(ca.intermediate('east')!.certificatePem).issuer).toBe(
          'O=Example, CN=Example Consul Agent CA',
        );
        // the key is kept encrypted with the given passphrase, none stored beside it
        expect(ca.isUnattended('corp-1')).toBe(false);
        expect(thrownMessage(() => ca.rootKey('corp-1', () => 'wrong passphrase!'))).toBe(
          '[shop root corp-1] the passphrase does not decrypt the root key. Fix: give the passphrase the root was created with (MESHFORM_CA_PASSPHRASE_CORP_1 or MESHFORM_CA_PASSPHRASE)',
        );
      });

      it.each([
        [
          'a certificate without CA basic constraints',
          () => opensslRoot({ ca: false }),
          '[shop root corp-1] the certificate has no CA basic constraints (CA:TRUE). Fix: import another root',
        ],
        [
          'a root expiring inside the rotation window',
          () => opensslRoot({ ca: true, days: 30 }),
          /^\[shop root corp-1\] the root expires in 29 days \(.*\), inside the rotation window of 90 days\. Fix: rotate it now/,
        ],
        [
          'a key that does not match the certificate',
          () => ({ certificate: opensslRoot({ ca: true }).certificate, key: opensslRoot({ ca: true }).key }),
          '[shop root corp-1] the private key does not match the certificate. Fix: give the key that belongs to this certificate',
        ],
        [
          'an intermediate instead of a root',
          () => {
            const mesh = issuedMesh('x', ['a']);
            return { certificate: mesh.ca.intermediate('a')!.certificatePem, key: mesh.ca.intermediate('a')!.keyPem };
          },
          '[shop root corp-1] a root must be self-signed, this certificate is issued by another CA. Fix: import the self-signed root of your hierarchy',
        ],
      ])('refuses %s, storing nothing', (_what, material, expected) => {
        const { store, ca } = issuedMesh('shop', []);
        const before = snapshot(store.directory);
        const { certificate, key } = material();
        const message = thrownMessage(() => ca.importRoot('corp-1', certificate, key, options));
        if (typeof expected === 'string') expect(message).toBe(expected);
        else expect(message).toMatch(expected);
        expect(snapshot(store.directory)).toEqual(before);
      });
    });
  });

  describe('datacenter material', () => {
    it("refuses an intermediate whose key was swapped with another datacenter's, changing nothing", () => {
      const { store, ca, plan, requests } = issuedMesh('shop', ['east', 'west']);
      const dcs = path.join(store.meshDirectory('shop'), 'ca', 'datacenters');
      fs.copyFileSync(path.join(dcs, 'west', 'intermediate-key.pem'), path.join(dcs, 'east', 'intermediate-key.pem'));
      const before = snapshot(store.directory);
      expect(thrownMessage(() => reconcileCa(ca, plan, requests, () => undefined))).toBe(
        '[shop intermediate east] the private key does not match the certificate. Fix: issue a new one with `meshform ca rotate --intermediate east`',
      );
      expect(snapshot(store.directory)).toEqual(before);
    });

    it('refuses an intermediate of another trust domain', () => {
      const { store, ca, plan, requests } = issuedMesh('shop', ['east']);
      const bank = issuedMesh('bank', ['east']);
      for (const f of ['intermediate.pem', 'intermediate-key.pem']) {
        fs.copyFileSync(
          path.join(bank.store.meshDirectory('bank'), 'ca', 'datacenters', 'east', f),
          path.join(store.meshDirectory('shop'), 'ca', 'datacenters', 'east', f),
        );
      }
      expect(thrownMessage(() => reconcileCa(ca, plan, requests, () => undefined))).toBe(
        "[shop intermediate east] the certificate does not chain to this mesh's roots (issuer O=meshform, CN=bank mesh root root-1): it belongs to another trust domain. " +
          'Fix: issue a new one with `meshform ca rotate --intermediate east`',
      );
    });

    it('refuses a leaf certificate in the place of an intermediate (no CA basic constraints)', () => {
      const { store, ca, plan, requests } = issuedMesh('shop', ['east']);
      const dir = path.join(store.meshDirectory('shop'), 'ca', 'datacenters', 'east');
      fs.writeFileSync(
        path.join(dir, 'intermediate.pem'),
        splitPem(fs.readFileSync(path.join(dir, 'server.pem'), 'utf8'))[0]!,
      );
      fs.copyFileSync(path.join(dir, 'server-key.pem'), path.join(dir, 'intermediate-key.pem'));
      const codes = inspectCa(ca, plan, requests).errors.map((e) => e.code);
      expect(codes[0]).toBe('not-a-ca');
      expect(thrownMessage(() => reconcileCa(ca, plan, requests, () => undefined))).toContain(
        '[shop intermediate east] the certificate has no CA basic constraints (CA:TRUE). Fix: issue a new one with `meshform ca rotate --intermediate east`',
      );
    });

    it('lists every problem at once', () => {
      const { store, ca, plan, requests } = issuedMesh('shop', ['east', 'west']);
      const dcs = path.join(store.meshDirectory('shop'), 'ca', 'datacenters');
      fs.copyFileSync(path.join(dcs, 'west', 'server-key.pem'), path.join(dcs, 'east', 'server-key.pem'));
      fs.copyFileSync(path.join(dcs, 'east', 'intermediate-key.pem'), path.join(dcs, 'west', 'intermediate-key.pem'));
      expect(thrownMessage(() => reconcileCa(ca, plan, requests, () => undefined))).toBe(
        '[shop server east, shop intermediate west] the CA material has 2 problems:\n' +
          '  - [shop server east] the private key does not match the certificate. Fix: issue a new one with `meshform ca rotate --intermediate east`\n' +
          '  - [shop intermediate west] the private key does not match the certificate. Fix: issue a new one with `meshform ca rotate --intermediate west`\n' +
          '. Fix: fix each as said above',
      );
    });

    it('renews what is due or expired, and a server certificate lacking a name the topology now needs', () => {
      const { ca, plan } = issuedMesh('shop', ['east', 'west'], {}, NOW);
      const fingerprint = (dc: string) => certificateFacts(splitPem(ca.server(dc)!.chainPem)[0]!).fingerprint;
      const east = fingerprint('east');
      const west = fingerprint('west');
      const intermediates = ['east', 'west'].map((dc) => ca.intermediate(dc)!.certificatePem);
      // WHEN west gains a host address, 300 days later (servers due: 365-day lifetime, 90-day window)
      const actions = reconcileCa(
        ca,
        plan,
        [request('east'), request('west', ['10.0.2.20'])],
        () => undefined,
        days(300),
      );
      // THEN both server certificates are renewed (due), the intermediates are kept
      expect(actions.created).toEqual([
        'server certificate east: expires within the rotation window (90 days)',
        'server certificate west: lacks IP Address:10.0.2.20; expires within the rotation window (90 days)',
      ]);
      expect(fingerprint('east')).not.toBe(east);
      expect(fingerprint('west')).not.toBe(west);
      expect(['east', 'west'].map((dc) => ca.intermediate(dc)!.certificatePem)).toEqual(intermediates);
      // and 400 days after that, an expired server certificate is renewed too
      const later = reconcileCa(
        ca,
        plan,
        [request('east'), request('west', ['10.0.2.20'])],
        () => undefined,
        days(700),
      );
      expect(later.created).toContain('server certificate east: expired on 2028-09-17T12:00:00.000Z');
    });
  });

  it("re-issues a store's Kubernetes server certificate that lacks consul-server.<namespace>[.svc], the names the chart's components dial (consul-k8s v2.0.3 templates/_helpers.tpl consul.serverTLSAltNames)", () => {
    // GIVEN a store issued with the branch point's names (test/ca-support request(): no consul-server.consul[.svc])
    const { ca, plan } = issuedMesh('shop', ['east'], {}, NOW);
    const before = certificateFacts(splitPem(ca.server('east')!.chainPem)[0]!).fingerprint;
    // WHEN the next synth asks for the names a Kubernetes datacenter needs now
    const [request] = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      });
    }).mesh('shop').ca.requests;
    const actions = reconcileCa(ca, plan, [request!], () => undefined, days(1));
    // THEN the server certificate is renewed with them, under the same intermediate
    expect(actions.created).toEqual([
      'server certificate east: lacks DNS:*.consul-server, DNS:*.consul-server.consul, DNS:consul-server.consul, DNS:consul-server.consul.svc',
    ]);
    const leaf = splitPem(ca.server('east')!.chainPem)[0]!;
    expect(certificateFacts(leaf).fingerprint).not.toBe(before);
    expect(certificateFacts(leaf).subjectAltName).toContain('DNS:consul-server.consul.svc');
  });

  it('creates the first root with the configured key and lifetime, unattended when no passphrase is given', () => {
    const { ca } = issuedMesh(
      'shop',
      ['east'],
      { keyAlgorithm: CertificateKeyAlgorithm.EC_P384, rootValidityDays: 4000 },
      NOW,
    );
    expect(certificateFacts(ca.rootCertificate('root-1')!)).toMatchObject({
      keyAlgorithm: 'ec-secp384r1',
      isCa: true,
      notAfter: days(4000),
    });
    expect(ca.isUnattended('root-1')).toBe(true);
  });
});
