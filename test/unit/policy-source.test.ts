/** The policy artifact's tar and manifest (strict reading of untrusted bytes) and the policySource config. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/daemon/config.js';
import { buildPolicyArtifact, policyLayerOf, policyTar, POLICY_ARTIFACT_TYPE, readPolicyTar } from '../../src/policy-source/artifact.js';
import { POLICY_LIMITS } from '../../src/policy/load.js';

const file = (name: string, text = 'apiVersion: signet/v1\n') => ({ name, bytes: Buffer.from(text) });

/** A tar header for `name` of `type` and `size`, with a correct checksum unless `badSum`. */
function header(name: string, size: number, type = '0', badSum = false): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${(badSum ? sum + 1 : sum).toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
const tarOf = (...entries: Array<[string, string, string?]>): Buffer =>
  Buffer.concat([
    ...entries.flatMap(([name, text, type]) => {
      const body = Buffer.from(text);
      return [header(name, body.length, type ?? '0'), body, Buffer.alloc((512 - (body.length % 512)) % 512)];
    }),
    Buffer.alloc(1024),
  ]);

describe('policy artifact', () => {
  it('is deterministic: the same files in any order give the same bytes and digest; other content another', () => {
    const a = buildPolicyArtifact([file('b.yaml', 'x: 1\n'), file('a.yaml')]);
    const b = buildPolicyArtifact([file('a.yaml'), file('b.yaml', 'x: 1\n')]);
    assert.deepEqual(a.manifest, b.manifest);
    assert.equal(a.digest, b.digest);
    assert.notEqual(buildPolicyArtifact([file('a.yaml'), file('b.yaml', 'x: 2\n')]).digest, a.digest);
    const m = JSON.parse(a.manifest.toString()) as { artifactType: string; layers: unknown[] };
    assert.equal(m.artifactType, POLICY_ARTIFACT_TYPE);
    assert.equal(m.layers.length, 1);
  });

  it('reads back what it wrote, in name order', () => {
    const files = readPolicyTar(policyTar([file('z.json', '{"apiVersion":"signet/v1"}'), file('a.yaml')]), 'x');
    assert.deepEqual(
      files.map((f) => f.name),
      ['a.yaml', 'z.json'],
    );
    assert.equal(files[1]!.text, '{"apiVersion":"signet/v1"}');
  });

  it('reads nothing but plain policy files from an untrusted tar', () => {
    assert.doesNotThrow(() => readPolicyTar(tarOf(['p.yaml', 'a: 1']), 'x'));
    const refused: Array<[Buffer, RegExp]> = [
      [tarOf(['../etc/p.yaml', 'a: 1']), /not a policy file name/],
      [tarOf(['sub/p.yaml', 'a: 1']), /not a policy file name/],
      [tarOf(['run.sh', 'a: 1']), /not a policy file name/],
      [tarOf(['.hidden.yaml', 'a: 1']), /not a policy file name/],
      [tarOf(['p.yaml', '/etc/shadow', '2']), /not a regular file/],
      [tarOf(['p.yaml', '', '5']), /not a regular file/],
      [tarOf(['p.yaml', 'a: 1'], ['p.yaml', 'b: 1']), /twice/],
      [Buffer.concat([header('p.yaml', 4, '0', true), Buffer.from('a: 1'), Buffer.alloc(508 + 1024)]), /checksum/],
      [Buffer.concat([header('p.yaml', 4000), Buffer.from('a: 1'), Buffer.alloc(508)]), /cut short|end blocks/],
      [Buffer.concat([header('p.yaml', POLICY_LIMITS.fileBytes + 1), Buffer.alloc(1024)]), /larger than/],
      [tarOf(['p.yaml', 'a: 1']).subarray(0, 1024), /end blocks/],
      [Buffer.alloc(1024), /no policy files/],
    ];
    for (const [tar, why] of refused)
      assert.throws(
        () => readPolicyTar(tar, 'reg/repo@sha256:x'),
        (err: Error & { code?: string }) => err.code === 'POLICY_INVALID' && why.test(err.message) && err.message.startsWith('reg/repo@sha256:x'),
        String(why),
      );
  });

  it('accepts only a manifest of its own kind: artifactType, one tar layer with a sha256 digest', () => {
    const good = buildPolicyArtifact([file('a.yaml')]);
    assert.equal(policyLayerOf(good.manifest, 'x').size, good.layer.length);
    const doc = JSON.parse(good.manifest.toString()) as Record<string, any>;
    const variants: Array<[Record<string, any>, RegExp]> = [
      [{ ...doc, artifactType: 'application/vnd.oci.image.config.v1+json' }, /not a signet policy artifact/],
      [{ ...doc, layers: [doc['layers'][0], doc['layers'][0]] }, /exactly one layer/],
      [{ ...doc, layers: [{ ...doc['layers'][0], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }] }, /policy layer/],
      [{ ...doc, layers: [{ ...doc['layers'][0], size: 1e12 }] }, /more than/],
    ];
    for (const [m, why] of variants) assert.throws(() => policyLayerOf(Buffer.from(JSON.stringify(m)), 'x'), why);
    assert.throws(() => policyLayerOf(Buffer.from('not json'), 'x'), /not JSON/);
  });
});

describe('signetd config: policySource', () => {
  const base = 'policySource:\n  ref: registry.example.com/security/node-policy:prod\n  keys: { policy-signer: { file: /etc/signet/policy-signer.pub } }\n';

  it('takes ref, keys, interval and cacheDir, with defaults; the policy comes from the source alone unless policyDir is set', () => {
    const c = parseConfig(base, 'signetd.yaml');
    assert.deepEqual(c.policySource, {
      ref: 'registry.example.com/security/node-policy:prod',
      keys: { 'policy-signer': { file: '/etc/signet/policy-signer.pub' } },
      intervalMs: 60_000,
      cacheDir: '/var/lib/signet/policy',
    });
    assert.equal(c.policyDir, '');
    const both = parseConfig(`policyDir: /etc/signet/policy.d\n${base}  interval: 30s\n  cacheDir: /srv/policy\n`, 'signetd.yaml');
    assert.equal(both.policyDir, '/etc/signet/policy.d');
    assert.equal(both.policySource!.intervalMs, 30_000);
    assert.equal(both.policySource!.cacheDir, '/srv/policy');
    const hsm = parseConfig('policySource: { ref: "r.example/p:1", keys: { k: { pkcs11: "pkcs11:token=t;object=k" } } }', 'f');
    assert.deepEqual(hsm.policySource!.keys, { k: { pkcs11: 'pkcs11:token=t;object=k' } });
    assert.equal(parseConfig('socket: /run/x.sock\n', 'f').policySource, undefined);
    assert.equal(parseConfig('socket: /run/x.sock\n', 'f').policyDir, '/etc/signet/policy.d');
  });

  it('refuses what would leave trust undefined or ambiguous', () => {
    const bad: Array<[string, RegExp]> = [
      ['policySource: { ref: "r.example/p:1" }', /keys must name at least one key/],
      ['policySource: { ref: "r.example/p:1", keys: {} }', /keys must name at least one key/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { file: relative.pub } } }', /absolute path/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { file: /a.pub, pkcs11: "pkcs11:x" } } }', /must be \{ file/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { sigstore: {} } } }', /must be \{ file/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { pkcs11: "token=x" } } }', /RFC 7512/],
      ['policySource: { keys: { k: { file: /a.pub } } }', /ref must be/],
      ['policySource: { ref: "UPPER/x:1", keys: { k: { file: /a.pub } } }', /ref/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { file: /a.pub } }, interval: 500ms }', /at least 1s/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { file: /a.pub } }, cacheDir: cache }', /cacheDir must be an absolute path/],
      ['policySource: { ref: "r.example/p:1", keys: { k: { file: /a.pub } }, policy: x }', /unknown setting "policy"/],
    ];
    for (const [text, why] of bad)
      assert.throws(
        () => parseConfig(text, 'signetd.yaml'),
        (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && why.test(err.message),
        `${text}: ${why}`,
      );
  });
});
