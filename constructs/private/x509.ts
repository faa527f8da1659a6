/**
 * X.509 certificates for meshform's CA hierarchy: keys from node:crypto (EC or RSA), the certificate
 * structure encoded with node-forge's ASN.1 encoder, signed with node:crypto, inspected with node:crypto's
 * X509Certificate. Covers what Consul's TLS needs: CA certificates (basic constraints, key usage, key ids),
 * cross-signed roots, and leaf certificates with DNS/IP SANs and server+client auth.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import type forgeModule from 'node-forge';

let forgeLoaded: typeof forgeModule | undefined;
/** node-forge, loaded on first use (42 modules): only issuing a certificate or reading a request needs it. */
function forge(): typeof forgeModule {
  return (forgeLoaded ??= require('node-forge') as typeof forgeModule);
}
const asn1 = () => forge().asn1;

/** Key algorithms meshform issues with. */
export type KeyAlgorithm = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-4096';

/** A generated key pair. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Generates a key pair. */
export function generateKey(algorithm: KeyAlgorithm): KeyPair {
  switch (algorithm) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096, publicExponent: 0x10001 });
  }
}

/** A private key as PEM: PKCS#8, encrypted with AES-256 when a passphrase is given. */
export function privateKeyPem(key: KeyObject, passphrase?: string): string {
  if (passphrase !== undefined) {
    return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  }
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Reads a private key PEM (encrypted or not). Throws with a clear message on a wrong passphrase. */
export function readPrivateKey(pem: string, passphrase?: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
}

/** What goes into a certificate. */
export interface CertificateSpec {
  /** Subject common name. */
  readonly commonName: string;
  /** Subject organization. */
  readonly organization?: string;
  /** The subject's public key. */
  readonly publicKey: KeyObject;
  /** Issuer: its certificate (PEM) and key; omit for a self-signed certificate. */
  readonly issuer?: { readonly certificatePem: string; readonly privateKey: KeyObject };
  /** Key signing the certificate when self-signed. */
  readonly selfSigningKey?: KeyObject;
  /** Validity. */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CA certificate (basic constraints CA:TRUE, keyCertSign/cRLSign) with an optional path length. */
  readonly ca?: { readonly pathLength?: number };
  /** Leaf SANs. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** A leaf's extended key usages. @default ['serverAuth', 'clientAuth'] */
  readonly extendedKeyUsage?: readonly ('serverAuth' | 'clientAuth')[];
  /** Use the subject name of this certificate instead of commonName/organization (cross-signing). */
  readonly subjectFromPem?: string;
  /** Use this DER subject name (from a certificate signing request) instead of commonName/organization. */
  readonly subjectDer?: Buffer;
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
} as const;

type Asn1 = forgeModule.asn1.Asn1;
/** A universal ASN.1 node of `type` (a SEQUENCE or SET is `constructed`). */
function universal(type: keyof typeof forgeModule.asn1.Type, constructed: boolean, value: string | Asn1[]): Asn1 {
  const a = asn1();
  return a.create(a.Class.UNIVERSAL, a.Type[type], constructed, value);
}

function seq(items: Asn1[]): Asn1 {
  return universal('SEQUENCE', true, items);
}
function oid(id: string): Asn1 {
  return universal('OID', false, asn1().oidToDer(id).getBytes());
}
function octets(bytes: string): Asn1 {
  return universal('OCTETSTRING', false, bytes);
}
function derBytes(node: Asn1): string {
  return asn1().toDer(node).getBytes();
}
function fromDer(buffer: Buffer): Asn1 {
  // BIT STRINGs stay opaque: a public key or signature is not re-parsed as nested ASN.1 (so re-encoding is exact)
  // (node-forge accepts an options object here; its type declarations only know the older boolean)
  const parse = asn1().fromDer as unknown as (
    bytes: forgeModule.util.ByteStringBuffer,
    options: { decodeBitStrings: boolean },
  ) => Asn1;
  return parse(forge().util.createBuffer(buffer.toString('binary')), { decodeBitStrings: false });
}

/** The raw DER bytes of the first element inside the SEQUENCE that starts at `der[0]`. */
function firstElementDer(der: Buffer): Buffer {
  const header = (at: number): { content: number; length: number } => {
    const first = der[at + 1]!;
    if (first < 0x80) return { content: at + 2, length: first };
    const count = first & 0x7f;
    let length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[at + 2 + i]!;
    return { content: at + 2 + count, length };
  };
  const outer = header(0);
  const inner = header(outer.content);
  return der.subarray(outer.content, inner.content + inner.length);
}
function positiveInteger(bytes: Buffer): Asn1 {
  const b = bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return universal('INTEGER', false, b.toString('binary'));
}
function time(date: Date): Asn1 {
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? universal('UTCTIME', false, asn1().dateToUtcTime(date))
    : universal('GENERALIZEDTIME', false, asn1().dateToGeneralizedTime(date));
}

function name(commonName: string, organization?: string): Asn1 {
  const rdn = (id: string, value: string) =>
    universal('SET', true, [seq([oid(id), universal('UTF8', false, forge().util.encodeUtf8(value))])]);
  return seq([...(organization ? [rdn(OID.organization, organization)] : []), rdn(OID.commonName, commonName)]);
}

/** The DER subject name of a certificate, as an ASN.1 node (for issuer names and cross-signing). */
function subjectOf(certificatePem: string): Asn1 {
  const raw = new X509Certificate(certificatePem).raw;
  const tbs = (fromDer(raw).value as Asn1[])[0]!;
  const fields = tbs.value as Asn1[];
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, ...
  return fields[5]!;
}

function keyIdentifier(publicKey: KeyObject): string {
  // RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING value.
  const spki = fromDer(publicKey.export({ type: 'spki', format: 'der' }) as Buffer);
  const bits = (spki.value as Asn1[])[1]!.value as string;
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest('binary');
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return seq([
    oid(id),
    ...(critical ? [universal('BOOLEAN', false, String.fromCharCode(0xff))] : []),
    octets(derBytes(value)),
  ]);
}

function keyUsageBits(flags: {
  digitalSignature?: boolean;
  keyEncipherment?: boolean;
  keyCertSign?: boolean;
  cRLSign?: boolean;
}): Asn1 {
  let byte = 0;
  if (flags.digitalSignature) byte |= 0x80; // bit 0
  if (flags.keyEncipherment) byte |= 0x20; // bit 2
  if (flags.keyCertSign) byte |= 0x04; // bit 5
  if (flags.cRLSign) byte |= 0x02; // bit 6
  let unused = 0;
  while (unused < 8 && !(byte & (1 << unused))) unused++;
  return universal('BITSTRING', false, String.fromCharCode(unused % 8) + String.fromCharCode(byte));
}

function ipBytes(ip: string): string {
  if (ip.includes(':')) {
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return Buffer.from(
      groups.flatMap((g) => {
        const n = parseInt(g, 16);
        return [n >> 8, n & 255];
      }),
    ).toString('binary');
  }
  return Buffer.from(ip.split('.').map(Number)).toString('binary');
}

function signatureAlgorithm(key: KeyObject): { id: string; hash: string; params: boolean } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'secp384r1'
      ? { id: OID.ecdsaWithSha384, hash: 'sha384', params: false }
      : { id: OID.ecdsaWithSha256, hash: 'sha256', params: false };
  }
  return { id: OID.sha256WithRsa, hash: 'sha256', params: true };
}

/** Issues a certificate and returns it as PEM. */
export function issueCertificate(spec: CertificateSpec): string {
  const signingKey = spec.issuer?.privateKey ?? spec.selfSigningKey;
  if (!signingKey) throw new Error('a certificate needs an issuer or a self-signing key');
  const issuerName = spec.issuer ? subjectOf(spec.issuer.certificatePem) : undefined;
  const subject = spec.subjectDer
    ? fromDer(spec.subjectDer)
    : spec.subjectFromPem
      ? subjectOf(spec.subjectFromPem)
      : name(spec.commonName, spec.organization);
  const algorithm = signatureAlgorithm(signingKey);
  const algorithmId = seq([oid(algorithm.id), ...(algorithm.params ? [universal('NULL', false, '')] : [])]);
  const extensions: Asn1[] = [];
  if (spec.ca) {
    const constraints: Asn1[] = [universal('BOOLEAN', false, String.fromCharCode(0xff))];
    if (spec.ca.pathLength !== undefined)
      constraints.push(universal('INTEGER', false, asn1().integerToDer(spec.ca.pathLength).getBytes()));
    extensions.push(extension(OID.basicConstraints, true, seq(constraints)));
    extensions.push(
      extension(OID.keyUsage, true, keyUsageBits({ digitalSignature: true, keyCertSign: true, cRLSign: true })),
    );
  } else {
    extensions.push(extension(OID.basicConstraints, true, seq([])));
    const rsa = spec.publicKey.asymmetricKeyType === 'rsa';
    extensions.push(extension(OID.keyUsage, true, keyUsageBits({ digitalSignature: true, keyEncipherment: rsa })));
    const usages = spec.extendedKeyUsage ?? ['serverAuth', 'clientAuth'];
    extensions.push(extension(OID.extKeyUsage, false, seq(usages.map((u) => oid(OID[u])))));
    const names = [
      ...(spec.dnsNames ?? []).map((d) => asn1().create(asn1().Class.CONTEXT_SPECIFIC, 2, false, d)),
      ...(spec.ipAddresses ?? []).map((ip) => asn1().create(asn1().Class.CONTEXT_SPECIFIC, 7, false, ipBytes(ip))),
    ];
    if (names.length > 0) extensions.push(extension(OID.subjectAltName, false, seq(names)));
  }
  extensions.push(extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(spec.publicKey))));
  const authorityKey = spec.issuer ? createPublicKey(spec.issuer.privateKey) : createPublicKey(signingKey);
  extensions.push(
    extension(
      OID.authorityKeyIdentifier,
      false,
      seq([asn1().create(asn1().Class.CONTEXT_SPECIFIC, 0, false, keyIdentifier(authorityKey))]),
    ),
  );
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = seq([
    asn1().create(asn1().Class.CONTEXT_SPECIFIC, 0, true, [
      universal('INTEGER', false, asn1().integerToDer(2).getBytes()),
    ]),
    positiveInteger(serial),
    algorithmId,
    issuerName ?? subject,
    seq([time(spec.notBefore), time(spec.notAfter)]),
    subject,
    fromDer(spec.publicKey.export({ type: 'spki', format: 'der' }) as Buffer),
    asn1().create(asn1().Class.CONTEXT_SPECIFIC, 3, true, [seq(extensions)]),
  ]);
  const tbsDer = Buffer.from(derBytes(tbs), 'binary');
  const signature = sign(algorithm.hash, tbsDer, signingKey);
  const certificate = seq([tbs, algorithmId, universal('BITSTRING', false, `\u0000${signature.toString('binary')}`)]);
  const der = Buffer.from(derBytes(certificate), 'binary');
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((c) => `${c}\n`);
}

/** What `meshform ca status` and the checks read of a certificate. */
export interface CertificateFacts {
  readonly subject: string;
  readonly issuer: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly keyAlgorithm: string;
  readonly subjectAltName?: string;
  readonly serial: string;
}

/**
 * The results of parsing and verifying certificates, by PEM: the CA checks of one run (ca status, synthesis,
 * the secret variables) read the same few certificates many times. A certificate's facts and signatures never
 * change; the cache stays small (it is emptied when it grows past a bound).
 */
const parsed = new Map<string, unknown>();
function memo<T>(key: string, compute: () => T): T {
  if (parsed.has(key)) return parsed.get(key) as T;
  const value = compute();
  if (parsed.size >= 512) parsed.clear();
  parsed.set(key, value);
  return value;
}

/** Facts about a PEM certificate. */
export function certificateFacts(pem: string): CertificateFacts {
  const facts = memo(`facts\0${pem}`, () => readFacts(pem));
  // Dates are mutable: each caller gets its own
  return { ...facts, notBefore: new Date(facts.notBefore), notAfter: new Date(facts.notAfter) };
}

function readFacts(pem: string): CertificateFacts {
  const cert = new X509Certificate(pem);
  const key = cert.publicKey;
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    fingerprint: cert.fingerprint256,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCa: cert.ca,
    keyAlgorithm:
      key.asymmetricKeyType === 'ec'
        ? `ec-${key.asymmetricKeyDetails?.namedCurve}`
        : `rsa-${key.asymmetricKeyDetails?.modulusLength}`,
    ...(cert.subjectAltName ? { subjectAltName: cert.subjectAltName } : {}),
    serial: cert.serialNumber,
  };
}

/** True when `certificatePem` was signed by the key of `issuerPem`. */
export function isSignedBy(certificatePem: string, issuerPem: string): boolean {
  return memo(`signed\0${certificatePem}\0${issuerPem}`, () => {
    const cert = new X509Certificate(certificatePem);
    const issuer = new X509Certificate(issuerPem);
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  });
}

/**
 * True when a trust bundle verifies a certificate chain: the chain's leaf, through the chain's other
 * certificates (intermediates, cross-signed roots; at most four steps), up to a certificate of the bundle.
 */
export function chainTrusted(bundlePem: string, chainPem: string): boolean {
  const roots = splitPem(bundlePem);
  const [leaf, ...rest] = splitPem(chainPem);
  let current: string | undefined = leaf;
  for (let depth = 0; current && depth < 4; depth++) {
    const issued: string = current;
    if (roots.some((root) => isSignedBy(issued, root))) return true;
    current = rest.find((candidate) => isSignedBy(issued, candidate));
  }
  return false;
}

/** True when the private key belongs to the certificate. */
export function keyMatchesCertificate(certificatePem: string, privateKey: KeyObject): boolean {
  return new X509Certificate(certificatePem).checkPrivateKey(privateKey);
}

/** A parsed PKCS#10 certificate signing request. */
export interface CertificateRequest {
  /** The requested subject, DER. */
  readonly subjectDer: Buffer;
  /** The subject as text (`CN=..., O=...`). */
  readonly subject: string;
  readonly publicKey: KeyObject;
}

const CSR_HASHES: { readonly [oid: string]: string } = {
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
};

/**
 * Parses a PEM certificate signing request (PKCS#10) and checks its self-signature, so that only the holder
 * of the key can obtain a certificate for it. Throws an Error naming what is wrong.
 */
export function parseCertificateRequest(pem: string): CertificateRequest {
  const match = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(
    pem,
  );
  if (!match) throw new Error('not a PEM certificate request (no BEGIN CERTIFICATE REQUEST block)');
  const der = Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64');
  let request: Asn1;
  try {
    request = fromDer(der);
  } catch {
    throw new Error('the certificate request is not valid DER');
  }
  const [info, algorithm, signatureBits] = request.value as Asn1[];
  if (!info || !algorithm || !signatureBits) throw new Error('the certificate request is incomplete');
  const fields = info.value as Asn1[];
  const subjectNode = fields[1]!;
  const spkiNode = fields[2]!;
  const publicKey = createPublicKey({ key: Buffer.from(derBytes(spkiNode), 'binary'), format: 'der', type: 'spki' });
  const algorithmOid = asn1().derToOid(forge().util.createBuffer((algorithm.value as Asn1[])[0]!.value as string));
  const hash = CSR_HASHES[algorithmOid];
  if (!hash) throw new Error(`the certificate request is signed with an unsupported algorithm (${algorithmOid})`);
  const signature = Buffer.from((signatureBits.value as string).slice(1), 'binary');
  if (!verify(hash, firstElementDer(der), publicKey, signature)) {
    throw new Error('the certificate request signature does not verify: it was not signed by the key it carries');
  }
  const subjectDer = Buffer.from(derBytes(subjectNode), 'binary');
  // node's X509 parser prints names; a throwaway self-signed certificate is not needed for that: read the RDNs
  const subject = ((subjectNode.value as Asn1[]) ?? [])
    .map((rdn) => {
      const [type, value] = (rdn.value as Asn1[])[0]!.value as Asn1[] as [Asn1, Asn1];
      const id = asn1().derToOid(forge().util.createBuffer(type.value as string));
      const label = id === OID.commonName ? 'CN' : id === OID.organization ? 'O' : id;
      return `${label}=${forge().util.decodeUtf8(value.value as string)}`;
    })
    .join(', ');
  return { subjectDer, subject, publicKey };
}
