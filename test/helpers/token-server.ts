/**
 * A token service per the distribution token authentication spec, for Debian's docker-registry
 * configured with `auth: token`. No installable Debian server speaks this protocol, so this test double
 * follows the spec: GET <realm>?service=…&scope=repository:<name>:<actions> with Basic credentials,
 * answering a JWT (ES256, certificate in the x5c header) whose `access` claim grants the scope.
 * The real registry validates every token against the certificate bundle it was given.
 */
import { randomBytes, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createCa, DAY_MS } from './openssl-ca.js';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Requests seen: `user scope`. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startTokenServer(dir: string, users: Record<string, string>): Promise<TokenServer> {
  // The registry trusts this self-signed certificate (its rootcertbundle) and finds it in each token's x5c header.
  const now = new Date();
  const {
    key,
    der: certDer,
    pemPath: certPath,
  } = createCa({
    dir,
    name: 'token',
    subject: '/CN=signet-test-token-issuer',
    notBefore: now,
    notAfter: new Date(now.getTime() + 2 * DAY_MS),
    extensions: ['basicConstraints=critical,CA:TRUE', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always'],
  });
  const service = 'signet-test-registry';
  const issuer = 'signet-test-issuer';
  const requests: string[] = [];
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const auth = req.headers.authorization ?? '';
    const [user, pass] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : ['', ''];
    const scope = url.searchParams.get('scope') ?? '';
    requests.push(`${user || 'anonymous'} ${scope}`);
    if (!user || users[user!] !== pass) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = scope ? [{ type: 'repository', name: scope.split(':')[1], actions: (scope.split(':')[2] ?? '').split(',').filter(Boolean) }] : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'ES256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user,
      aud: url.searchParams.get('service'),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64(header)}.${b64(claims)}`;
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${sig}`, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
