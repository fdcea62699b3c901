/**
 * The format list (src/formats/index.ts) and the key-store list (src/keys/index.ts) are the one place a
 * format or key store is registered: discovery, evaluation and the policy schema derive from them.
 * These tests hold the published schema (schema/policy.schema.json, validated by src/policy/schema.ts)
 * and the derived parts to the lists, so a new format or store cannot be half registered.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COSIGN_SIGN_PREDICATE_TYPE } from '../../src/formats/bundle.js';
import { ALL_FORMATS, FORMAT_LIST, formatNamed } from '../../src/formats/index.js';
import { COSIGN_SIGN_V1_PREDICATE_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE } from '../../src/formats/sigstore-bundle.js';
import { ALL_FORMATS as ALL_FORMATS_FROM_TYPES } from '../../src/formats/types.js';
import { KEY_KINDS, KEY_STORES, keyStoreFor } from '../../src/keys/index.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { keyLocation } from '../../src/keys/location.js';
import { SCHEMA_PATH, validatePolicyFile } from '../../src/policy/schema.js';
import { SourceFactory } from '../../src/engine/default-sources.js';
import { ReferrersSource } from '../../src/engine/referrers-source.js';
import { TagSource } from '../../src/engine/tag-source.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { makeTestKey } from '../helpers/keys.js';

interface SchemaShape {
  definitions: {
    key: { properties: Record<string, unknown>; oneOf: Array<{ required: string[] }> };
    scope: { properties: { formats: { items: { enum: string[] } } } };
  };
}
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as SchemaShape;

describe('registries: one list of formats, one list of key stores', () => {
  describe('formats (src/formats/index.ts)', () => {
    it("the schema's formats enum is the list, in its order", () => {
      assert.deepEqual(
        schema.definitions.scope.properties.formats.items.enum,
        FORMAT_LIST.map((f) => f.name),
      );
      assert.deepEqual(
        [...ALL_FORMATS],
        FORMAT_LIST.map((f) => f.name),
      );
      assert.deepEqual(ALL_FORMATS_FROM_TYPES, ALL_FORMATS);
    });

    it('the schema refuses a format not in the list', () => {
      const problems = validatePolicyFile({
        apiVersion: 'signet/v1',
        scopes: { 'r.example/app': { action: 'verify', formats: ['pgp'], signatures: { keys: ['k'] } } },
        keys: { k: { file: '/k.pub' } },
      });
      assert.equal(problems.length, 1, JSON.stringify(problems));
      for (const f of ALL_FORMATS) assert.match(problems[0]!.message, new RegExp(`"${f}"`));
    });

    it('each module says where its signatures live, and names are unique', () => {
      assert.equal(new Set(ALL_FORMATS).size, ALL_FORMATS.length);
      for (const f of FORMAT_LIST) {
        assert.equal(formatNamed(f.name), f);
        const loc = f.location;
        if (loc.kind === 'tag') {
          assert.match(loc.suffix, /^\.[a-z]+$/);
          assert.ok(loc.maxPayloadBytes > 0);
        } else {
          assert.ok(loc.artifactTypes.length > 0 && loc.layerMediaTypes.length > 0, f.name);
          assert.ok(loc.maxEnvelopeBytes > 0);
        }
      }
      assert.equal(formatNamed('pgp'), undefined);
    });

    it('sources derive from the list: one per format the scope accepts, in list order, per store', () => {
      const factory = new SourceFactory({} as RegistryClient);
      const all = factory.sources(['registry']).signatures;
      assert.equal(all.length, FORMAT_LIST.length);
      FORMAT_LIST.forEach((f, i) => assert.ok(all[i] instanceof (f.location.kind === 'tag' ? TagSource : ReferrersSource), f.name));
      assert.equal(factory.sources(['registry'], ['notation']).signatures.length, 1);
      assert.equal(factory.sources(['registry', { ociLayout: '/nonexistent' }], ['cosign', 'notation']).signatures.length, 4);
    });

    it("the bundle module's constants are the verifier's (they are kept apart so the list loads without the sigstore libraries)", () => {
      assert.equal(COSIGN_SIGN_PREDICATE_TYPE, COSIGN_SIGN_V1_PREDICATE_TYPE);
      const loc = formatNamed('sigstore-bundle')!.location;
      assert.ok(
        loc.kind === 'referrers' && loc.artifactTypes.includes(SIGSTORE_BUNDLE_V03_MEDIA_TYPE) && loc.layerMediaTypes.includes(SIGSTORE_BUNDLE_V03_MEDIA_TYPE),
      );
    });
  });

  describe('key stores (src/keys/index.ts)', () => {
    it("the schema's exactly-one-of check names the list's kinds, each a property of a key", () => {
      assert.deepEqual(
        schema.definitions.key.oneOf.map((o) => o.required),
        KEY_KINDS.map((k) => [k]),
      );
      for (const k of KEY_KINDS) assert.ok(k in schema.definitions.key.properties, k);
      assert.deepEqual(KEY_KINDS, ['file', 'pkcs11', 'certificates', 'sigstore']);
    });

    it('the one-of message names every kind of the list', () => {
      const problems = validatePolicyFile({ apiVersion: 'signet/v1', keys: { a: { verifyOn: 'node' } } });
      const msg = problems.map((p) => p.message).join('\n');
      assert.match(msg, /exactly one of "file", "pkcs11", "certificates" or "sigstore"/);
    });

    it("a key's store is the one whose field it sets; its location is the store's", () => {
      const specs = {
        file: { file: '/etc/signet/keys/a.pub' },
        pkcs11: { pkcs11: 'pkcs11:token=t;object=o;pin-value=1234' },
        certificates: { certificates: '/etc/signet/ca.pem' },
        sigstore: { sigstore: { trustedRoot: '/etc/signet/root.json', issuer: 'https://issuer', subject: 's' } },
      };
      for (const store of KEY_STORES) {
        const spec = specs[store.kind];
        assert.equal(keyStoreFor(spec), store);
        assert.equal(keyLocation(spec), store.location(spec));
      }
      assert.equal(keyLocation(specs.file), 'file:/etc/signet/keys/a.pub');
      assert.equal(keyLocation(specs.sigstore), 'sigstore:/etc/signet/root.json');
      assert.doesNotMatch(keyLocation(specs.pkcs11), /1234/);
      assert.equal(keyStoreFor({}), undefined);
    });

    it("the key ring loads each kind through the list's provider when none is given", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'signet-registries-'));
      const pub = makeTestKey().writePublic(join(dir, 'a.pub'));
      const ring = new KeyRing();
      const set = await ring.load({ a: { file: pub }, none: {} as never, missing: { certificates: join(dir, 'absent.pem') } });
      assert.equal(set.get('a').key?.location, `file:${pub}`);
      assert.equal(set.get('none').error?.code, 'KEY_INVALID');
      assert.equal(set.get('missing').error?.code, 'KEY_NOT_FOUND');
      await ring.close();
    });
  });

  it("the node's engine does not import the CI scan gate (src/scan/), directly or through what it imports", () => {
    const engineDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/engine');
    const seen = new Set<string>();
    const reached: string[] = [];
    const walk = (file: string) => {
      if (seen.has(file) || !existsSync(file)) return;
      seen.add(file);
      if (file.includes(`${'/'}scan${'/'}`)) reached.push(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\()'(\.[^']+)'/g)) walk(resolve(dirname(file), m[1]!));
    };
    for (const f of readdirSync(engineDir).filter((n) => n.endsWith('.js'))) walk(join(engineDir, f));
    assert.ok(seen.size > 10, 'the walk found the engine modules');
    assert.deepEqual(reached, []);
  });
});
