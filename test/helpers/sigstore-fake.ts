/**
 * A sigstore instance of our own for tests: a Fulcio-like CA issuing a short-lived code-signing
 * certificate with the signer's identity (SAN email, issuer extension), a Rekor-like log key signing the
 * inclusion promise (SET) of a dsse v0.0.1 entry, and the trusted root JSON naming both. No installable
 * server speaks these protocols, so this follows the sigstore specifications (bundle v0.3, trusted
 * root v0.1, Rekor SET payload) closely enough for the sigstore project's own verifier to accept it.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preAuthEncoding, INTOTO_PAYLOAD_TYPE } from '../../src/formats/dsse.js';
import { buildStatement, serializeStatement, subjectForDigest } from '../../src/formats/intoto.js';
import { COSIGN_SIGN_PREDICATE_TYPE } from '../../src/formats/bundle.js';
import type { Signer } from '../../src/keys/types.js';
import { createCa, DAY_MS, ROOT_CA_EXTENSIONS, type TestCa } from './openssl-ca.js';
import { createFakeRekorV2, type FakeRekorV2 } from './rekor-v2-fake.js';

export interface FakeSigstore {
  dir: string;
  trustedRootPath: string;
  issuer: string;
  identity: string;
  /** A keyless bundle (v0.3) for an image digest, signed by the certificate's key. */
  bundleFor(repository: string, digest: string, options?: { tamperSet?: boolean }): Buffer;
  /**
   * A cosign v2 keyless `.sig` layer for an image digest, as the real cosign lays it out: the
   * simple-signing payload (the layer blob), the signature, and the certificate, chain and Rekor
   * record (hashedrekord v0.0.1 entry, signed entry timestamp) annotations.
   */
  cosignSigFor(
    dockerReference: string,
    digest: string,
    options?: { integratedTime?: number; bodyCertificatePem?: string; timestamp?: boolean; expiredCertificate?: boolean },
  ): CosignKeylessLayer;
  /** An RFC 3161 TimeStampResp over `data`, by the fake timestamp authority the trusted root names. */
  timestamp(data: Buffer): Buffer;
  /** The leaf (Fulcio) and CA certificates, PEM. */
  leafPem: string;
  caPem: string;
  /** The timestamp authority's root (tsa-root.pem in `dir`), which issues other authorities' certificates. */
  tsaCa: TestCa;
  /** The Rekor v2 log the trusted root names beside the v1 log. */
  rekorV2: FakeRekorV2;
  /** A v0.3 bundle whose transparency-log entry is a Rekor v2 one (see RekorV2BundleOptions). */
  rekorV2Bundle(options: RekorV2BundleOptions): Promise<Buffer>;
}

/**
 * A bundle with a Rekor v2 entry, as cosign 3 and sigstore-go write them: no integrated time, no signed
 * entry timestamp; an inclusion proof to a signed checkpoint; the canonicalized body of a v2 Entry
 * (hashedrekord or dsse 0.0.2) naming the signer's certificate or public key; the time from an RFC 3161
 * timestamp over the signature by the trusted root's timestamp authority.
 */
export interface RekorV2BundleOptions {
  /** A DSSE envelope with a cosign/sign/v1 statement about an image, or a message signature over an artifact. */
  content: { dsse: { repository: string; digest: string } } | { message: { artifact: Buffer } };
  /**
   * hashedrekord (default: a message's digest, or a DSSE envelope's pre-authentication encoding's digest
   * as rekor-tiles logs DSSE now) or dsse 0.0.2 (the payload's digest, as the first Rekor v2 releases did).
   */
  entryKind?: 'hashedrekord' | 'dsse';
  /** The fake Fulcio certificate (default), its ten-minute certificate that expired ten days ago, or a key. */
  signer?: 'certificate' | 'expired-certificate' | Signer;
  /** An RFC 3161 timestamp over the signature (default true). */
  timestamp?: boolean;
  /** Log with this Rekor v2 log instead of the trusted one. */
  log?: FakeRekorV2;
  /** The entry names this certificate or public key (PEM) as the signature's verifier instead of the signer's. */
  loggedKeyPem?: string;
  checkpointOrigin?: string;
  checkpointSigner?: FakeRekorV2;
}

export interface CosignKeylessLayer {
  payload: Buffer;
  signature: Buffer;
  /** The layer's annotations: signature, certificate, chain, bundle. */
  annotations: Record<string, string>;
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export function createFakeSigstore(identity = 'release@example.com', issuer = 'https://accounts.example.com'): FakeSigstore {
  const dir = mkdtempSync(join(tmpdir(), 'signet-sigstore-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const now = new Date();
  const fromNow = (ms: number) => new Date(now.getTime() + ms);
  // The CA is valid from thirty days ago, as Fulcio's CA long predates any certificate it issues.
  const ca = createCa({ dir, name: 'ca', subject: '/O=signet-test/CN=fake-fulcio', notBefore: fromNow(-30 * DAY_MS), notAfter: fromNow(3650 * DAY_MS) });
  const issuerDer = Buffer.concat([Buffer.from([0x0c, issuer.length]), Buffer.from(issuer)]).toString('hex');
  const fulcioExtensions = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=codeSigning',
    `subjectAltName=critical,email:${identity}`,
    `1.3.6.1.4.1.57264.1.8=DER:${issuerDer}`,
  ];
  const leaf = ca.issue({ name: 'leaf', subject: '/O=signet-test', notBefore: now, notAfter: fromNow(2 * DAY_MS), extensions: fulcioExtensions });
  // A Fulcio certificate as they are: ten minutes long, here issued ten days ago (long expired now).
  const expiredFrom = new Date(Math.floor(now.getTime() / 1000) * 1000 - 10 * DAY_MS);
  const oldLeaf = ca.issue({
    name: 'old-leaf',
    subject: '/O=signet-test',
    notBefore: expiredFrom,
    notAfter: new Date(expiredFrom.getTime() + 600_000),
    extensions: fulcioExtensions,
  });
  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'rekor.key']);
  // A timestamp authority (RFC 3161): its own root and a leaf for time stamping; `openssl ts` answers.
  const tsaCa = createCa({
    dir,
    name: 'tsa-root',
    subject: '/O=signet-test/CN=fake-tsa-root',
    notBefore: now,
    notAfter: fromNow(3650 * DAY_MS),
    extensions: [...ROOT_CA_EXTENSIONS, 'authorityKeyIdentifier=keyid:always'],
  });
  const tsa = tsaCa.issue({
    name: 'tsa',
    subject: '/O=signet-test/CN=fake-tsa',
    notBefore: now,
    notAfter: fromNow(365 * DAY_MS),
    extensions: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=critical,timeStamping'],
  });
  writeFileSync(
    join(dir, 'tsa.cnf'),
    '[ tsa_config ]\nserial = ./tsa-serial\nsigner_cert = ./tsa.pem\nsigner_key = ./tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\ness_cert_id_alg = sha256\n',
  );
  writeFileSync(join(dir, 'tsa-serial'), '01\n');
  const rekorKey = createPrivateKey(readFileSync(join(dir, 'rekor.key')));
  const rekorSpki = createPublicKey(rekorKey).export({ type: 'spki', format: 'der' });
  const logId = createHash('sha256').update(rekorSpki).digest();
  const leafKey = leaf.key;
  const start = fromNow(-30 * DAY_MS).toISOString();
  const rekorV2 = createFakeRekorV2();
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: 'https://rekor.signet.test',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: rekorSpki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
        logId: { keyId: logId.toString('base64') },
      },
      rekorV2.trustedRootEntry(start),
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'signet-test', commonName: 'fake-fulcio' },
        uri: 'https://fulcio.signet.test',
        certChain: { certificates: [{ rawBytes: ca.der.toString('base64') }] },
        validFor: { start },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [
      {
        subject: { organization: 'signet-test', commonName: 'fake-tsa' },
        uri: 'https://tsa.signet.test',
        certChain: { certificates: [{ rawBytes: tsa.der.toString('base64') }, { rawBytes: tsaCa.der.toString('base64') }] },
        validFor: { start },
      },
    ],
  };
  /** An RFC 3161 TimeStampResp over `data` (SHA-256), from the fake timestamp authority. */
  const timestamp = (data: Buffer): Buffer => {
    writeFileSync(join(dir, 'ts-data.bin'), data);
    run(['ts', '-query', '-data', 'ts-data.bin', '-sha256', '-cert', '-out', 'ts.tsq']);
    run(['ts', '-reply', '-config', 'tsa.cnf', '-section', 'tsa_config', '-queryfile', 'ts.tsq', '-out', 'ts.tsr']);
    return readFileSync(join(dir, 'ts.tsr'));
  };
  const trustedRootPath = join(dir, 'trusted_root.json');
  writeFileSync(trustedRootPath, JSON.stringify(trustedRoot, null, 2));

  const leafPem = leaf.pem;
  const oldLeafPem = oldLeaf.pem;
  const oldLeafKey = oldLeaf.key;
  const caPem = ca.pem;
  /** The key details a Rekor v2 verifier names for a key algorithm. */
  const keyDetails = (algorithm: Signer['algorithm']) =>
    algorithm === 'ed25519'
      ? 'PKIX_ED25519'
      : algorithm === 'rsa'
        ? 'PKIX_RSA_PKCS1V15_3072_SHA256'
        : algorithm === 'ecdsa-p384'
          ? 'PKIX_ECDSA_P384_SHA_384'
          : 'PKIX_ECDSA_P256_SHA_256';
  const rekorV2Bundle = async (o: RekorV2BundleOptions): Promise<Buffer> => {
    const signer = o.signer ?? 'certificate';
    const certPem = signer === 'certificate' ? leafPem : signer === 'expired-certificate' ? oldLeafPem : undefined;
    const signBytes = async (data: Buffer): Promise<Buffer> =>
      typeof signer === 'string' ? sign('sha256', data, signer === 'certificate' ? leafKey : oldLeafKey) : Buffer.from(await signer.sign(data, 'sha256'));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest();
    let content: Record<string, unknown>;
    let signature: Buffer;
    let digest: Buffer;
    let payloadHash: Buffer | undefined;
    if ('dsse' in o.content) {
      const payload = serializeStatement(buildStatement([subjectForDigest(o.content.dsse.repository, o.content.dsse.digest)], COSIGN_SIGN_PREDICATE_TYPE, {}));
      const pae = preAuthEncoding(INTOTO_PAYLOAD_TYPE, payload);
      signature = await signBytes(pae);
      digest = sha(pae);
      payloadHash = sha(payload);
      content = {
        dsseEnvelope: { payload: payload.toString('base64'), payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: signature.toString('base64'), keyid: '' }] },
      };
    } else {
      signature = await signBytes(o.content.message.artifact);
      digest = sha(o.content.message.artifact);
      content = { messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: digest.toString('base64') }, signature: signature.toString('base64') } };
    }
    const verifier =
      certPem !== undefined
        ? {
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            x509Certificate: { rawBytes: Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64') },
          }
        : {
            keyDetails: keyDetails((signer as Signer).algorithm),
            publicKey: {
              rawBytes: createPublicKey((signer as Signer).publicKeyPem())
                .export({ type: 'spki', format: 'der' })
                .toString('base64'),
            },
          };
    const kind = o.entryKind ?? 'hashedrekord';
    const loggedDer = o.loggedKeyPem !== undefined ? Buffer.from(o.loggedKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64') : undefined;
    const loggedVerifier =
      loggedDer === undefined
        ? verifier
        : o.loggedKeyPem!.includes('CERTIFICATE')
          ? { keyDetails: 'PKIX_ECDSA_P256_SHA_256', x509Certificate: { rawBytes: loggedDer } }
          : { keyDetails: 'PKIX_ECDSA_P256_SHA_256', publicKey: { rawBytes: loggedDer } };
    const logged = { content: signature.toString('base64'), verifier: loggedVerifier };
    const spec =
      kind === 'hashedrekord'
        ? { hashedRekordV002: { data: { algorithm: 'SHA2_256', digest: digest.toString('base64') }, signature: logged } }
        : { dsseV002: { payloadHash: { algorithm: 'SHA2_256', digest: (payloadHash ?? digest).toString('base64') }, signatures: [logged] } };
    const body = Buffer.from(canonical({ apiVersion: '0.0.2', kind, spec }));
    const entry = (o.log ?? rekorV2).entryFor(body, kind, {
      ...(o.checkpointOrigin !== undefined ? { checkpointOrigin: o.checkpointOrigin } : {}),
      ...(o.checkpointSigner !== undefined ? { checkpointSigner: o.checkpointSigner } : {}),
    });
    return Buffer.from(
      JSON.stringify({
        mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        verificationMaterial: {
          ...(certPem !== undefined
            ? { certificate: { rawBytes: verifier.x509Certificate!.rawBytes } }
            : { publicKey: { hint: (signer as Signer).fingerprint } }),
          tlogEntries: [entry],
          ...(o.timestamp !== false
            ? { timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: timestamp(signature).toString('base64') }] } }
            : {}),
        },
        ...content,
      }),
    );
  };
  return {
    dir,
    trustedRootPath,
    tsaCa,
    rekorV2,
    rekorV2Bundle,
    issuer,
    identity,
    leafPem,
    caPem,
    timestamp,
    cosignSigFor(dockerReference: string, digest: string, options = {}) {
      const payload = Buffer.from(
        JSON.stringify({
          critical: {
            identity: { 'docker-reference': dockerReference },
            image: { 'docker-manifest-digest': digest },
            type: 'cosign container image signature',
          },
          optional: null,
        }),
      );
      // expiredCertificate: signed ten days ago with a ten-minute certificate, logged while it was valid.
      const old = options.expiredCertificate === true;
      const signingPem = old ? oldLeafPem : leafPem;
      const signature = sign('sha256', payload, old ? oldLeafKey : leafKey);
      // Rekor's hashedrekord v0.0.1 entry: the payload's hash, the signature and the certificate (PEM, base64).
      const body = Buffer.from(
        canonical({
          apiVersion: '0.0.1',
          kind: 'hashedrekord',
          spec: {
            data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
            signature: {
              content: signature.toString('base64'),
              publicKey: { content: Buffer.from(options.bodyCertificatePem ?? signingPem).toString('base64') },
            },
          },
        }),
      );
      const integratedTime = options.integratedTime ?? (old ? Math.floor(expiredFrom.getTime() / 1000) + 300 : Math.ceil(Date.now() / 1000));
      const setPayload = { body: body.toString('base64'), integratedTime, logIndex: 7, logID: logId.toString('hex') };
      const set = sign('sha256', Buffer.from(canonical(setPayload)), rekorKey);
      return {
        payload,
        signature,
        annotations: {
          'dev.cosignproject.cosign/signature': signature.toString('base64'),
          'dev.sigstore.cosign/certificate': signingPem,
          'dev.sigstore.cosign/chain': caPem,
          'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: setPayload }),
          // cosign --timestamp-server-url: a timestamp over the signature bytes.
          ...(options.timestamp
            ? { 'dev.sigstore.cosign/timestamp': JSON.stringify({ SignedRFC3161Timestamp: timestamp(signature).toString('base64') }) }
            : {}),
        },
      };
    },
    bundleFor(repository: string, digest: string, options = {}) {
      const payload = serializeStatement(buildStatement([subjectForDigest(repository, digest)], COSIGN_SIGN_PREDICATE_TYPE, {}));
      const sig = sign('sha256', preAuthEncoding(INTOTO_PAYLOAD_TYPE, payload), leafKey);
      const body = Buffer.from(
        canonical({
          apiVersion: '0.0.1',
          kind: 'dsse',
          spec: {
            payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') },
            signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(leafPem).toString('base64') }],
          },
        }),
      );
      // Certificates are valid from the second they were made: log the entry no earlier.
      const integratedTime = Math.ceil(Date.now() / 1000);
      const setPayload = canonical({ body: body.toString('base64'), integratedTime, logIndex: 0, logID: logId.toString('hex') });
      // A one-leaf log: the root is the RFC 6962 leaf hash; the checkpoint is a signed note by the log key.
      const root = createHash('sha256')
        .update(Buffer.concat([Buffer.from([0]), body]))
        .digest();
      const note = `rekor.signet.test - 1\n1\n${root.toString('base64')}\n`;
      const noteSig = Buffer.concat([logId.subarray(0, 4), sign('sha256', Buffer.from(note), rekorKey)]);
      const checkpoint = `${note}\n\u2014 rekor.signet.test ${noteSig.toString('base64')}\n`;
      const set = sign('sha256', Buffer.from(setPayload), rekorKey);
      if (options.tamperSet) set[set.length - 3] = set[set.length - 3]! ^ 0x01;
      return Buffer.from(
        JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
          verificationMaterial: {
            certificate: { rawBytes: leaf.der.toString('base64') },
            tlogEntries: [
              {
                logIndex: '0',
                logId: { keyId: logId.toString('base64') },
                kindVersion: { kind: 'dsse', version: '0.0.1' },
                integratedTime: String(integratedTime),
                inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
                inclusionProof: { logIndex: '0', rootHash: root.toString('base64'), treeSize: '1', hashes: [], checkpoint: { envelope: checkpoint } },
                canonicalizedBody: body.toString('base64'),
              },
            ],
          },
          dsseEnvelope: { payload: payload.toString('base64'), payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
        }),
      );
    },
  };
}
