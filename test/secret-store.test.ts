import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeshformError, SecretStore } from '../index';
import { tempDir, thrownMessage } from './support';

describe('SecretStore', () => {
  it('creates a complete, private entry on first use and reuses it afterwards', () => {
    // GIVEN an empty directory
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir, serverCaKeyBits: 2048 });
    expect(store.has('shop')).toBe(false);
    // WHEN
    const first = store.ensure('shop');
    const second = SecretStore.open({ directory: dir }).ensure('shop');
    // THEN
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.secrets).toEqual(first.secrets);
    expect(first.secrets.gossipKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(first.secrets.gossipKey, 'base64')).toHaveLength(32);
    expect(first.secrets.aclBootstrapToken).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(first.secrets.serverCaPrivateKeyPem).toContain('-----BEGIN RSA PRIVATE KEY-----');
    expect(fs.statSync(path.join(dir, 'shop')).mode & 0o777).toBe(0o700);
    for (const f of fs.readdirSync(path.join(dir, 'shop'))) {
      expect(fs.statSync(path.join(dir, 'shop', f)).mode & 0o777).toBe(0o600);
    }
    expect(fs.readFileSync(path.join(dir, '.gitignore'), 'utf8')).toContain('*');
    expect(fs.readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
  });

  it('keeps meshes apart', () => {
    const store = SecretStore.open({ directory: path.join(tempDir(), 'store'), serverCaKeyBits: 2048 });
    const a = store.ensure('a').secrets;
    const b = store.ensure('b').secrets;
    expect(a.gossipKey).not.toBe(b.gossipKey);
    expect(a.aclBootstrapToken).not.toBe(b.aclBootstrapToken);
    expect(a.serverCaCertificatePem).not.toBe(b.serverCaCertificatePem);
  });

  it('issues a CA that openssl accepts as a CA with a matching key', () => {
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir, serverCaKeyBits: 2048 });
    store.ensure('shop');
    const cert = path.join(dir, 'shop', 'server-ca.pem');
    const key = path.join(dir, 'shop', 'server-ca-key.pem');
    const text = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toContain('Subject: CN = shop Consul Agent CA, O = meshform');
    expect(execFileSync('openssl', ['verify', '-CAfile', cert, cert], { encoding: 'utf8' }).trim()).toBe(`${cert}: OK`);
    const certModulus = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-modulus'], { encoding: 'utf8' });
    const keyModulus = execFileSync('openssl', ['rsa', '-in', key, '-noout', '-modulus'], { encoding: 'utf8' });
    expect(certModulus).toBe(keyModulus);
    const fingerprint = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], {
      encoding: 'utf8',
    });
    expect(fingerprint.trim()).toBe(`sha256 Fingerprint=${store.info('shop').serverCaFingerprint}`);
  });

  it('refuses an incomplete entry with a clear error instead of recreating it', () => {
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir, serverCaKeyBits: 2048 });
    store.ensure('shop');
    fs.rmSync(path.join(dir, 'shop', 'gossip.key'));
    const message = thrownMessage(() => store.ensure('shop'));
    expect(message).toBe(
      `[${path.join(dir, 'shop')}] the secret store is incomplete or unreadable (gossip.key is missing): ` +
        `${JSON.stringify(path.join(dir, 'shop'))}. Fix: restore the directory from your backup; if this mesh was never deployed, ` +
        'delete the directory and run `meshform synth` to create a new store',
    );
    expect(() => store.ensure('shop')).toThrow(MeshformError);
  });

  it('detects a certificate that does not match the recorded fingerprint', () => {
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir, serverCaKeyBits: 2048 });
    store.ensure('a');
    store.ensure('b');
    fs.copyFileSync(path.join(dir, 'b', 'server-ca.pem'), path.join(dir, 'a', 'server-ca.pem'));
    expect(thrownMessage(() => store.load('a'))).toContain(
      'server-ca.pem does not match the fingerprint in store.json',
    );
  });

  it('defaults to $MESHFORM_SECRETS_DIR', () => {
    const dir = path.join(tempDir(), 'env-store');
    const before = process.env.MESHFORM_SECRETS_DIR;
    process.env.MESHFORM_SECRETS_DIR = dir;
    try {
      expect(SecretStore.open().directory).toBe(dir);
    } finally {
      if (before === undefined) delete process.env.MESHFORM_SECRETS_DIR;
      else process.env.MESHFORM_SECRETS_DIR = before;
    }
  });
});
