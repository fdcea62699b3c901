/**
 * Notation signatures made in tests as the Notary Project specification lays them out (JWS and COSE
 * envelopes, notary.x509 scheme), by a test CA whose code-signing certificates can have any validity
 * window (openssl ca -startdate/-enddate), and RFC 3161 countersignatures from the fake timestamp
 * authority of test/helpers/sigstore-fake.ts (`openssl ts`), or from other authorities its root issues
 * with other extensions — to prove each timestamping requirement is checked.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASN1Obj } from '@sigstore/core';
import { encode, Tag } from 'cbor2';
import { createCa, DAY_MS } from './openssl-ca.js';
import type { FakeSigstore } from './sigstore-fake.js';

const pemDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

export interface NotationLeaf {
  pem: string;
  der: Buffer;
  key: KeyObject;
}

export interface NotationCa {
  dir: string;
  rootPath: string;
  rootPem: string;
  rootDer: Buffer;
  /** A code-signing certificate (P-256) valid from `notBefore` to `notAfter`, issued by the root. */
  leaf(name: string, notBefore: Date, notAfter: Date): NotationLeaf;
}

export function createNotationCa(): NotationCa {
  const dir = mkdtempSync(join(tmpdir(), 'signet-notation-ca-'));
  // The root predates every certificate it issues (valid from thirty days ago), as a real CA does.
  const root = createCa({
    dir,
    name: 'root',
    subject: '/C=US/ST=WA/O=Signet Test/CN=Notation Test Root',
    notBefore: new Date(Date.now() - 30 * DAY_MS),
    notAfter: new Date(Date.now() + 3650 * DAY_MS),
  });
  return {
    dir,
    rootPath: root.pemPath,
    rootPem: root.pem,
    rootDer: root.der,
    leaf(name, notBefore, notAfter) {
      const { pem, der, key } = root.issue({
        name,
        subject: `/C=US/ST=WA/O=Signet Test/CN=${name}`,
        notBefore,
        notAfter,
        extensions: ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning'],
      });
      return { pem, der, key };
    },
  };
}

export interface TestTsa {
  /** The authority's signing certificate then its root, PEM (a `tsaCertificates` file). */
  chainPem: string;
  chain: X509Certificate[];
  /** The authority's signing certificate (DER) and key. */
  signer: { der: Buffer; key: KeyObject };
  /** An RFC 3161 TimeStampToken (DER ContentInfo) over `data`, its message imprint made with `digest`. */
  stamp(data: Buffer, digest?: 'sha1' | 'sha256' | 'sha384' | 'sha512'): Buffer;
}

export interface TsaOptions {
  /** Extended key usage of the authority's certificate (openssl x509v3 syntax); the fake's own when unset. */
  eku?: string;
  /** `accuracy` of the TSA configuration, e.g. `secs:30`; none when unset. */
  accuracy?: string;
  /** The ESS certificate identifier: sha256 (signing-certificate-v2) or sha1 (signing-certificate). */
  essCertIdAlg?: 'sha1' | 'sha256';
  /** The TSA policy OID; 1.2.3.4.1 when unset (0.4.0.2023.1.1 is the ETSI baseline policy). */
  policy?: string;
  /** The token embeds the authority's root too (`certs` of the TSA configuration), not only its signing certificate. */
  embedRoot?: boolean;
  /** An RSA key of this many bits for the authority's own certificate (signed by `openssl ts` itself, RSA with SHA-256). */
  rsaBits?: number;
}

/**
 * A timestamp authority under the fake sigstore's TSA root: its own signing certificate (`name`) when
 * `options.eku` or `options.rsaBits` is given, else the fake's (the one its trusted root lists).
 */
export function createTestTsa(fake: FakeSigstore, name = 'tsa', options: TsaOptions = {}): TestTsa {
  const dir = fake.dir;
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  if (options.eku !== undefined || options.rsaBits !== undefined) {
    const now = new Date();
    fake.tsaCa.issue({
      name,
      subject: `/O=signet-test/CN=${name}`,
      notBefore: now,
      notAfter: new Date(now.getTime() + 365 * DAY_MS),
      extensions: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `extendedKeyUsage=${options.eku ?? 'critical,timeStamping'}`],
      ...(options.rsaBits !== undefined ? { key: { rsaBits: options.rsaBits } } : {}),
    });
  }
  const section =
    `${name}_${options.accuracy ?? 'exact'}_${options.essCertIdAlg ?? 'sha256'}_${options.policy ?? 'p'}_${options.embedRoot ? 'root' : 'leaf'}`.replace(
      /[^a-z0-9_]/gi,
      '_',
    );
  writeFileSync(join(dir, `${section}-serial`), '01\n');
  writeFileSync(
    join(dir, `${section}.cnf`),
    [
      `[ ${section} ]`,
      `serial = ./${section}-serial`,
      // openssl ts signs only as a proper timestamping certificate: others re-sign its token (resignToken).
      `signer_cert = ./${options.eku !== undefined ? 'tsa' : name}.pem`,
      `signer_key = ./${options.eku !== undefined ? 'tsa' : name}.key`,
      'signer_digest = sha256',
      `default_policy = ${options.policy ?? '1.2.3.4.1'}`,
      'digests = sha1, sha256, sha384, sha512',
      ...(options.accuracy !== undefined ? [`accuracy = ${options.accuracy}`] : []),
      `ess_cert_id_alg = ${options.essCertIdAlg ?? 'sha256'}`,
      ...(options.embedRoot ? ['certs = ./tsa-root.pem'] : []),
      '',
    ].join('\n'),
  );
  const chainPem = readFileSync(join(dir, `${name}.pem`), 'utf8') + readFileSync(join(dir, 'tsa-root.pem'), 'utf8');
  return {
    chainPem,
    chain: [new X509Certificate(readFileSync(join(dir, `${name}.pem`))), new X509Certificate(readFileSync(join(dir, 'tsa-root.pem')))],
    signer: { der: pemDer(readFileSync(join(dir, `${name}.pem`), 'utf8')), key: createPrivateKey(readFileSync(join(dir, `${name}.key`))) },
    stamp(data, digest = 'sha256') {
      writeFileSync(join(dir, `${section}-data.bin`), data);
      run(['ts', '-query', '-data', `${section}-data.bin`, `-${digest}`, '-cert', '-out', `${section}.tsq`]);
      run(['ts', '-reply', '-config', `${section}.cnf`, '-section', section, '-queryfile', `${section}.tsq`, '-out', `${section}.tsr`]);
      // A TimeStampResp is { status, timeStampToken }: Notation carries the token.
      const token = ASN1Obj.parseBuffer(readFileSync(join(dir, `${section}.tsr`)) as Buffer<ArrayBuffer>).subs[1]!.toDER();
      return options.eku === undefined
        ? token
        : resignToken(token, pemDer(readFileSync(join(dir, `${name}.pem`), 'utf8')), createPrivateKey(readFileSync(join(dir, `${name}.key`))));
    },
  };
}

/** DER tag-length-value. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : Buffer.from([
          0x80 | Math.ceil(n.toString(16).length / 2),
          ...Buffer.from(n.toString(16).padStart(Math.ceil(n.toString(16).length / 2) * 2, '0'), 'hex'),
        ]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const rebuild = (o: ASN1Obj, subs: Buffer[]) => tlv(o.tag.toDER(), Buffer.concat(subs));

/**
 * The same TimeStampToken signed by another certificate and key: its sid, embedded certificate and
 * signing-certificate-v2 attribute name `certDer`, and the signed attributes are signed again (ECDSA
 * SHA-256). How a token by a certificate `openssl ts` refuses to sign with (other key usages) is made;
 * `essNames` makes the signing-certificate-v2 attribute name another certificate.
 */
export function resignToken(token: Buffer, certDer: Buffer, key: KeyObject, essNames: Buffer = certDer): Buffer {
  const ci = ASN1Obj.parseBuffer(token as Buffer<ArrayBuffer>);
  const explicit = ci.subs[1]!;
  const sd = explicit.subs[0]!;
  const [version, digestAlgs, encap] = sd.subs as [ASN1Obj, ASN1Obj, ASN1Obj];
  const signerInfos = sd.subs[sd.subs.length - 1]!;
  const si = signerInfos.subs[0]!;
  const tbs = ASN1Obj.parseBuffer(certDer as Buffer<ArrayBuffer>).subs[0]!;
  const sid = tlv(0x30, Buffer.concat([tbs.subs[3]!.toDER(), tbs.subs[1]!.toDER()]));
  const signedAttrs = si.subs.find((o) => o.tag.isContextSpecific(0))!;
  const attrs = signedAttrs.subs.map((a) => {
    if (a.subs[0]!.toOID() !== '1.2.840.113549.1.9.16.2.47') return a.toDER();
    const essCertIdV2 = tlv(0x30, tlv(0x04, createHash('sha256').update(essNames).digest()));
    return tlv(0x30, Buffer.concat([a.subs[0]!.toDER(), tlv(0x31, tlv(0x30, tlv(0x30, essCertIdV2)))]));
  });
  const attrsSet = tlv(0x31, Buffer.concat(attrs));
  const signature = sign('sha256', attrsSet, key);
  const newSi = rebuild(si, [si.subs[0]!.toDER(), sid, si.subs[2]!.toDER(), tlv(0xa0, Buffer.concat(attrs)), si.subs[4]!.toDER(), tlv(0x04, signature)]);
  const newSd = rebuild(sd, [version.toDER(), digestAlgs.toDER(), encap.toDER(), tlv(0xa0, certDer), rebuild(signerInfos, [newSi])]);
  return rebuild(ci, [ci.subs[0]!.toDER(), rebuild(explicit, [newSd])]);
}

export interface NotationSignOptions {
  leaf: NotationLeaf;
  /** The certificates after the leaf (DER), up to the root. */
  chain: Buffer[];
  target: { mediaType: string; digest: string; size: number };
  signingTime: Date;
  /** The countersignature over the signature value, when there is one. */
  timestamp?: (signature: Buffer) => Buffer;
}

const PAYLOAD_TYPE = 'application/vnd.cncf.notary.payload.v1+json';

/** A JWS envelope (application/jose+json), ES256, notary.x509. */
export function signNotationJws(o: NotationSignOptions): Buffer {
  const hdr = {
    alg: 'ES256',
    crit: ['io.cncf.notary.signingScheme'],
    cty: PAYLOAD_TYPE,
    'io.cncf.notary.signingScheme': 'notary.x509',
    'io.cncf.notary.signingTime': o.signingTime.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  const p = Buffer.from(JSON.stringify(hdr)).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ targetArtifact: o.target })).toString('base64url');
  const sig = sign('sha256', Buffer.from(`${p}.${payload}`), { key: o.leaf.key, dsaEncoding: 'ieee-p1363' });
  const header: Record<string, unknown> = { x5c: [o.leaf.der, ...o.chain].map((c) => c.toString('base64')), 'io.cncf.notary.signingAgent': 'signet-test' };
  if (o.timestamp) header['io.cncf.notary.timestampSignature'] = o.timestamp(sig).toString('base64');
  return Buffer.from(JSON.stringify({ payload, protected: p, header, signature: sig.toString('base64url') }));
}

/** A COSE_Sign1 envelope (application/cose), ES256, notary.x509. */
export function signNotationCose(o: NotationSignOptions): Buffer {
  const hdr = new Map<unknown, unknown>([
    [1, -7],
    [2, ['io.cncf.notary.signingScheme']],
    [3, PAYLOAD_TYPE],
    ['io.cncf.notary.signingScheme', 'notary.x509'],
    ['io.cncf.notary.signingTime', new Tag(1, Math.floor(o.signingTime.getTime() / 1000))],
  ]);
  const protectedBytes = encode(hdr);
  const payload = new Uint8Array(Buffer.from(JSON.stringify({ targetArtifact: o.target })));
  const sig = sign('sha256', encode(['Signature1', protectedBytes, new Uint8Array(0), payload]), { key: o.leaf.key, dsaEncoding: 'ieee-p1363' });
  const unprotected = new Map<unknown, unknown>([
    [33, [o.leaf.der, ...o.chain].map((c) => new Uint8Array(c))],
    ['io.cncf.notary.signingAgent', 'signet-test'],
  ]);
  if (o.timestamp) unprotected.set('io.cncf.notary.timestampSignature', new Uint8Array(o.timestamp(sig)));
  return Buffer.from(encode(new Tag(18, [protectedBytes, unprotected, payload, new Uint8Array(sig)])));
}
