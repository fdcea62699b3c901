/**
 * The pieces of registry authentication that need no network: the WWW-Authenticate parser, config.json
 * credentials, token answers and their cache, and the retry delay.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseChallenges, parseTokenResponse, TokenCache } from '../../src/registry/auth.js';
import { retryDelayMs } from '../../src/registry/client.js';
import { CredentialStore, parseDockerConfig } from '../../src/registry/credentials.js';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('WWW-Authenticate challenge parser', () => {
  it('reads a distribution Bearer challenge with a comma inside the quoted scope', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:team/app:pull,push' } },
    ]);
  });

  it('reads a Basic challenge, case-insensitive scheme and parameter names, whitespace around = and ,', () => {
    assert.deepEqual(parseChallenges('BASIC  Realm = "Registry Realm" , Charset=UTF-8'), [
      { scheme: 'basic', params: { realm: 'Registry Realm', charset: 'UTF-8' } },
    ]);
  });

  it('unescapes quoted-pairs in quoted strings', () => {
    assert.equal(parseChallenges('Bearer realm="a \\"quoted\\" \\\\ realm"')[0]!.params['realm'], 'a "quoted" \\ realm');
  });

  it('splits several challenges and skips schemes it does not speak (token68 too)', () => {
    const got = parseChallenges('Negotiate YWJj==, Basic realm="b", Bearer realm="https://t/token",service=s, Digest realm="d", nonce="n"');
    assert.deepEqual(
      got.map((c) => c.scheme),
      ['basic', 'bearer'],
    );
    assert.deepEqual(got[1]!.params, { realm: 'https://t/token', service: 's' });
  });

  it('accepts a scheme without parameters and an empty header', () => {
    assert.deepEqual(parseChallenges('Basic'), [{ scheme: 'basic', params: {} }]);
    assert.deepEqual(parseChallenges(''), []);
  });

  for (const [label, header, why] of [
    ['an unterminated quoted string', 'Bearer realm="https://t/token', /unterminated quoted string/],
    ['a parameter without a value', 'Bearer realm=,service="x"', /parameter "realm" has no value/],
    ['a repeated parameter', 'Bearer realm="https://a/token",realm="https://b/token"', /parameter "realm" repeated/],
    ['garbage after a value', 'Bearer realm="https://t/token"x, service="s"', /unexpected character at position 30/],
    ['a parameter without a scheme', '="x"', /malformed WWW-Authenticate header near position 0/],
    ['two challenges without a comma', 'Bearer realm=x Basic realm=y', /unexpected character/],
  ] as const) {
    it(`rejects ${label} as REGISTRY_PROTOCOL`, () => {
      assert.throws(
        () => parseChallenges(header),
        (e: { code?: string; message: string }) => e.code === 'REGISTRY_PROTOCOL' && why.test(e.message),
      );
    });
  }
});

describe('Docker config.json credentials', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signet-creds-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const store = (doc: unknown) => {
    const path = join(dir, 'config.json');
    writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return new CredentialStore(path);
  };

  it('decodes auth (base64 user:password, a colon in the password kept)', async () => {
    const s = store({ auths: { '127.0.0.1:5000': { auth: b64('ci:pa:ss') } } });
    assert.deepEqual(await s.lookup('127.0.0.1:5000'), { username: 'ci', password: 'pa:ss' });
    assert.equal(await s.lookup('127.0.0.1:5001'), undefined, 'another port is another registry');
  });

  it('reads username/password and identitytoken', async () => {
    const s = store({ auths: { 'a.example': { username: 'u', password: 'p' }, 'b.example': { auth: b64('<token>:'), identitytoken: 'refresh-me' } } });
    assert.deepEqual(await s.lookup('a.example'), { username: 'u', password: 'p' });
    assert.deepEqual(await s.lookup('b.example'), { username: '<token>', password: '', identityToken: 'refresh-me' });
  });

  it('finds entries keyed https://host and https://host/v1/', async () => {
    assert.deepEqual(await store({ auths: { 'https://reg.example': { auth: b64('a:b') } } }).lookup('reg.example'), { username: 'a', password: 'b' });
    assert.deepEqual(await store({ auths: { 'https://reg.example/v1/': { auth: b64('c:d') } } }).lookup('reg.example'), { username: 'c', password: 'd' });
  });

  it('finds Docker Hub under https://index.docker.io/v1/', async () => {
    assert.deepEqual(await store({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } }).lookup('docker.io'), {
      username: 'hub',
      password: 'pw',
    });
  });

  it('treats an empty auths entry as no credentials (helpers: credential-helpers.test)', async () => {
    const s = store({ auths: { 'reg.example': {} } });
    assert.equal(await s.lookup('reg.example'), undefined);
  });

  it('treats a missing file as no credentials, and no path as anonymous', async () => {
    assert.equal(await new CredentialStore(join(dir, 'absent.json')).lookup('reg.example'), undefined);
    assert.equal(await new CredentialStore(undefined).lookup('reg.example'), undefined);
  });

  it('re-reads the file when it changes', async () => {
    const s = store({ auths: { 'reg.example': { auth: b64('old:1') } } });
    assert.equal((await s.lookup('reg.example'))?.username, 'old');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { 'reg.example': { auth: b64('new:2') } } }));
    assert.equal((await s.lookup('reg.example'))?.username, 'new');
  });

  it('rejects malformed JSON as CONFIG_INVALID naming the file but not its contents', async () => {
    const secret = b64('ci:very-secret-password');
    const s = store(`{"auths":{"reg.example":{"auth":"${secret}"}}`);
    await assert.rejects(
      () => s.lookup('reg.example'),
      (e: { code?: string; message: string }) =>
        e.code === 'CONFIG_INVALID' && e.message.includes(join(dir, 'config.json')) && /not valid JSON/.test(e.message) && !e.message.includes(secret),
    );
  });

  for (const [label, doc, why] of [
    ['a top-level array', [], /not a JSON object/],
    ['auths not an object', { auths: 'x' }, /"auths" is not an object/],
    ['an entry not an object', { auths: { 'reg.example': 5 } }, /auths\["reg.example"\] is not an object/],
    ['auth not base64', { auths: { 'reg.example': { auth: 'not base64!' } } }, /auth is not base64 of user:password/],
    ['auth without a colon', { auths: { 'reg.example': { auth: b64('justuser') } } }, /auth is not base64 of user:password/],
    ['username a number', { auths: { 'reg.example': { username: 5, password: 'p' } } }, /username is not a string/],
  ] as const) {
    it(`rejects ${label} as CONFIG_INVALID`, () => {
      assert.throws(
        () => parseDockerConfig(JSON.stringify(doc), '/etc/signet/docker.json'),
        (e: { code?: string; message: string }) => e.code === 'CONFIG_INVALID' && why.test(e.message) && e.message.startsWith('/etc/signet/docker.json'),
      );
    });
  }

  it('keeps the password out of the message when auth is malformed', () => {
    const bad = b64('user-without-colon-secret');
    assert.throws(
      () => parseDockerConfig(JSON.stringify({ auths: { h: { auth: bad } } }), 'c.json'),
      (e: Error) => !e.message.includes(bad) && !e.message.includes('secret'),
    );
  });
});

describe('token endpoint answers and the token cache', () => {
  it('accepts token or access_token, with expires_in', () => {
    assert.deepEqual(parseTokenResponse('{"token":"t1","expires_in":300}', 'https://auth'), { token: 't1', expiresIn: 300 });
    assert.deepEqual(parseTokenResponse('{"access_token":"t2"}', 'https://auth'), { token: 't2', expiresIn: 60 });
  });

  it('rejects non-JSON and answers without a token as REGISTRY_PROTOCOL, without echoing the body', () => {
    assert.throws(
      () => parseTokenResponse('<html>secret-page</html>', 'https://auth'),
      (e: { code?: string; message: string }) => e.code === 'REGISTRY_PROTOCOL' && !e.message.includes('secret-page'),
    );
    assert.throws(() => parseTokenResponse('{"token":""}', 'https://auth'), code('REGISTRY_PROTOCOL'));
    assert.throws(() => parseTokenResponse('null', 'https://auth'), code('REGISTRY_PROTOCOL'));
  });

  it('caches per key until shortly before expires_in', () => {
    const cache = new TokenCache();
    cache.set('r|repository:a:pull', 'Bearer x', 300);
    assert.equal(cache.get('r|repository:a:pull'), 'Bearer x');
    assert.equal(cache.get('r|repository:b:pull'), undefined);
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 291_000;
      assert.equal(cache.get('r|repository:a:pull'), undefined, 'refreshed before the registry would refuse it');
    } finally {
      Date.now = realNow;
    }
  });
});

describe('retry delay', () => {
  it('honours Retry-After in seconds and as an HTTP date, capped at 5 s', () => {
    assert.equal(retryDelayMs(0, '1'), 1000);
    assert.equal(retryDelayMs(0, '0'), 0);
    assert.equal(retryDelayMs(0, '3600'), 5000);
    const now = Date.parse('2030-01-01T00:00:00Z');
    assert.equal(retryDelayMs(0, new Date(now + 2000).toUTCString(), now), 2000);
    assert.equal(retryDelayMs(0, new Date(now - 2000).toUTCString(), now), 0);
  });

  it('backs off exponentially from about 200 ms without Retry-After (or with a useless one)', () => {
    for (let i = 0; i < 20; i++) {
      const [a, b, c] = [retryDelayMs(0, null), retryDelayMs(1, 'soon'), retryDelayMs(2, null)];
      assert.ok(a >= 160 && a <= 240, String(a));
      assert.ok(b >= 320 && b <= 480, String(b));
      assert.ok(c >= 640 && c <= 960, String(c));
    }
  });
});
