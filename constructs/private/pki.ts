import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A certificate and its private key, both PEM. */
export interface KeyPairPem {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** What a self-signed CA certificate is made of. */
export interface SelfSignedCaOptions {
  /** Subject common name. */
  readonly commonName: string;
  /** Subject organization. */
  readonly organization: string;
  /** Days the certificate is valid from now. */
  readonly validityDays: number;
  /** RSA modulus length. */
  readonly keyBits: number;
  /** Start of validity (injectable for tests). */
  readonly notBefore?: Date;
}

/** A positive random serial of 16 bytes, as forge wants it (hex, no leading 1 bit). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

/**
 * Creates a self-signed CA: key from node:crypto, certificate built and signed with node-forge (SHA-256),
 * with the extensions Consul and openssl expect of a CA (basic constraints CA:TRUE critical, key usage
 * keyCertSign/cRLSign critical, subject key identifier).
 */
export function createSelfSignedCa(options: SelfSignedCaOptions): KeyPairPem {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: options.keyBits,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey);
  const publicKey = forge.pki.setRsaPublicKey(key.n, key.e);

  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  const notBefore = options.notBefore ?? new Date();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + options.validityDays * 86_400_000);
  const subject = [
    { name: 'commonName', value: options.commonName },
    { name: 'organizationName', value: options.organization },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certificatePem: forge.pki.certificateToPem(cert), privateKeyPem: privateKey };
}

/** SHA-256 fingerprint of a PEM certificate's DER, as colon-separated upper-case hex (openssl's format). */
export function certificateFingerprint(certificatePem: string): string {
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(certificatePem))).getBytes();
  const hex = createHash('sha256').update(Buffer.from(der, 'binary')).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** The subject common name and validity of a PEM certificate. */
export function certificateSummary(certificatePem: string): { commonName: string; notAfter: Date; isCa: boolean } {
  const cert = forge.pki.certificateFromPem(certificatePem);
  const cn = cert.subject.getField('CN');
  const bc = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  return { commonName: cn ? String(cn.value) : '', notAfter: cert.validity.notAfter, isCa: bc?.cA === true };
}

/** A Consul gossip encryption key: 32 random bytes, base64 (what `consul keygen` prints). */
export function createGossipKey(): string {
  return randomBytes(32).toString('base64');
}
