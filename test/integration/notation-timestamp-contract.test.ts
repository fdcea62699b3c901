/**
 * Notation RFC 3161 timestamps through the containerd contract: Notation signatures (JWS and COSE) whose
 * code-signing certificate has expired, countersigned by the fake timestamp authority of
 * test/helpers/sigstore-fake.ts while it was valid, pushed as referrers to a real docker-registry and
 * verified by a real signetd answering the verifier spawned as containerd spawns it. The timestamp
 * authorities come from a `tsaCertificates` file for one key and from the sigstore trusted root
 * (`tsaTrustedRoot`) for another.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { pushReferrer } from '../../src/signing/referrer.js';
import { startDaemon, waitFor, type DaemonHandle } from '../helpers/daemon.js';
import { pushImage, type PushedImage } from '../helpers/images.js';
import { createNotationCa, createTestTsa, signNotationCose, signNotationJws } from '../helpers/notation-signer.js';
import { startRegistry, type RegistryHandle } from '../helpers/registry.js';
import { createFakeSigstore } from '../helpers/sigstore-fake.js';
import { runVerifier, socketFor, type VerifierKind } from '../helpers/verifier.js';

const NOTATION = 'application/vnd.cncf.notary.signature';
/** One namespace per key: the authorities from a tsaCertificates chain, from its root only, from the trusted root. */
const NAMESPACES = ['file', 'roots', 'root'] as const;
const SOURCES = { file: 'a tsaCertificates chain', roots: 'a tsaCertificates root only', root: 'the trusted root' };
const HOUR = 3_600_000;

/** Flip one bit of the byte at `at` (negative: from the end). */
function flip(token: Buffer, at: number): Buffer {
  const t = Buffer.from(token);
  const i = at < 0 ? t.length + at : at;
  t[i] = t[i]! ^ 0x01;
  return t;
}

/** The offset of the seconds' last digit of the TSTInfo genTime (GeneralizedTime YYYYMMDDHHMMSSZ, signed). */
function genTimeSecondsDigit(token: Buffer): number {
  for (let i = 0; i + 17 <= token.length; i++) {
    if (token[i] === 0x18 && token[i + 1] === 0x0f && /^\d{14}Z$/.test(token.subarray(i + 2, i + 17).toString('latin1'))) return i + 2 + 13;
  }
  throw new Error('no genTime in the token');
}

interface Case {
  name: string;
  /** Which verifier containerd runs (both kinds are exercised across the cases). */
  kind: VerifierKind;
  expect: RegExp;
  ok: boolean;
}

describe('Notation RFC 3161 timestamps through the containerd contract', function () {
  this.timeout(180_000);
  let registry: RegistryHandle;
  let client: RegistryClient;
  let daemon: DaemonHandle;
  const fake = createFakeSigstore();
  const ca = createNotationCa();
  const tsa = createTestTsa(fake);
  const foreignTsa = createTestTsa(createFakeSigstore());
  const staged = new Map<string, PushedImage>();
  let notAfter = 0;

  const cases: Case[] = [
    { name: 'stamped', kind: 'sh', ok: true, expect: /signed by tsa-(file|roots|root)\b/ },
    { name: 'unstamped', kind: 'node', ok: false, expect: /not valid at the verification time/ },
    { name: 'late', kind: 'sh', ok: false, expect: /not valid at the RFC 3161 timestamp/ },
    { name: 'foreign', kind: 'node', ok: false, expect: /does not verify with the timestamp authorities/ },
    { name: 'altered-signature', kind: 'sh', ok: false, expect: /countersignature does not verify/ },
    { name: 'altered-time', kind: 'node', ok: false, expect: /countersignature does not verify/ },
  ];
  const formats = [
    ['jws', signNotationJws, 'application/jose+json'],
    ['cose', signNotationCose, 'application/cose'],
  ] as const;

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ insecureRegistries: [registry.host], retries: 0 });
    const host = registry.host;
    // The images first (registry round trips take their time), then the signatures, quickly: with a
    // certificate that expires seconds from now (second precision), or one that expired two hours ago.
    for (const [fmt] of formats)
      for (const c of cases)
        for (const ns of NAMESPACES)
          staged.set(`${ns}/${c.name}-${fmt}`, await pushImage(client, { registry: host, repository: `${ns}/${c.name}-${fmt}` }, 'v1'));
    const expired = ca.leaf('old-release', new Date(Date.now() - 3 * HOUR), new Date(Date.now() - 2 * HOUR));
    // Long enough to sign and stamp them all on a busy machine (30 stamps), from what one stamp takes here.
    const started = Date.now();
    tsa.stamp(Buffer.from('how long does a stamp take here'));
    notAfter = Math.floor(Date.now() / 1000) * 1000 + Math.max(6_000, 3_000 + 45 * (Date.now() - started));
    const leaf = ca.leaf('release', new Date(Date.now() - HOUR), new Date(notAfter));
    const referrers: Array<[string, string, Buffer]> = [];
    for (const [fmt, sign, layerType] of formats) {
      for (const c of cases) {
        for (const ns of NAMESPACES) {
          const img = staged.get(`${ns}/${c.name}-${fmt}`)!;
          const by = c.name === 'unstamped' ? undefined : c.name === 'foreign' ? foreignTsa : tsa;
          const change =
            c.name === 'altered-signature'
              ? (t: Buffer) => flip(t, -1)
              : c.name === 'altered-time'
                ? (t: Buffer) => flip(t, genTimeSecondsDigit(t))
                : undefined;
          const envelope = sign({
            leaf: c.name === 'late' ? expired : leaf,
            chain: [ca.rootDer],
            target: { mediaType: img.mediaType, digest: img.digest, size: img.size },
            signingTime: c.name === 'late' ? new Date(Date.now() - 2.5 * HOUR) : new Date(),
            ...(by ? { timestamp: (sig: Buffer) => (change ? change(by.stamp(sig)) : by.stamp(sig)) } : {}),
          });
          referrers.push([`${ns}/${c.name}-${fmt}`, layerType, envelope]);
        }
      }
    }
    assert.ok(Date.now() < notAfter - 500, 'the signatures were made (and stamped) before the certificate expired');
    for (const [repository, layerType, envelope] of referrers) {
      const img = staged.get(repository)!;
      await pushReferrer(
        client,
        { registry: host, repository },
        { mediaType: img.mediaType, digest: img.digest, size: img.size },
        NOTATION,
        layerType,
        envelope,
      );
    }
    const tsaFile = join(ca.dir, 'tsa-chain.pem');
    writeFileSync(tsaFile, tsa.chainPem);
    const tsaRootFile = join(ca.dir, 'tsa-root.pem');
    writeFileSync(tsaRootFile, tsa.chain[1]!.toString());
    daemon = await startDaemon({
      insecureRegistries: [host],
      policy: {
        apiVersion: 'signet/v1',
        keys: {
          'tsa-file': { certificates: ca.rootPath, tsaCertificates: tsaFile },
          'tsa-root': { certificates: ca.rootPath, tsaTrustedRoot: fake.trustedRootPath },
          'tsa-roots': { certificates: ca.rootPath, tsaCertificates: tsaRootFile },
        },
        scopes: {
          [`${host}/file`]: { action: 'verify', signatures: { keys: ['tsa-file'] } },
          [`${host}/root`]: { action: 'verify', signatures: { keys: ['tsa-root'] } },
          [`${host}/roots`]: { action: 'verify', signatures: { keys: ['tsa-roots'] } },
        },
      },
    });
    await waitFor(() => daemon.log().includes('policy loaded'), 'policy');
    // Now let the certificate expire: from here on only a trusted timestamp can vouch for it.
    await new Promise((r) => setTimeout(r, Math.max(0, notAfter - Date.now() + 1500)));
  });
  after(async () => {
    await daemon?.stop();
    await registry?.stop();
  });

  for (const [fmt] of formats) {
    for (const ns of NAMESPACES) {
      for (const c of cases) {
        const source = SOURCES[ns];
        it(`${fmt.toUpperCase()}, authorities from ${source}: ${c.name} → ${c.ok ? 'accepted' : 'refused'}`, async () => {
          assert.ok(Date.now() > notAfter, 'the signing certificate has expired');
          const img = staged.get(`${ns}/${c.name}-${fmt}`)!;
          const r = await runVerifier({
            socket: socketFor(c.kind, daemon.socket),
            kind: c.kind,
            name: `${registry.host}/${ns}/${c.name}-${fmt}:v1`,
            descriptor: { mediaType: img.mediaType, digest: img.digest, size: img.size },
          });
          assert.equal(r.code, c.ok ? 0 : 1, r.stdout + r.stderr);
          assert.match(r.stdout, c.expect);
          if (c.ok) assert.match(r.stdout, new RegExp(`signed by tsa-${ns} `), 'by the key of this namespace');
        });
      }
    }
  }
});
