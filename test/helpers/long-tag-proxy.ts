/**
 * Debian's docker-registry (distribution 2.8) cannot store cosign's tags for sha512 digests: its
 * route for `/v2/<name>/manifests/<reference>` only matches tags of at most 128 characters (the OCI
 * rule), and `sha512-<128 hex>.sig` has 139, so it answers "404 page not found" to every request for
 * one. This proxy stands in for a registry that stores them: it forwards everything to the real
 * registry, and maps a manifest tag longer than 128 characters to a short alias tag on the way
 * (`l-` and 40 hex digits of its SHA-256), so the manifest itself is stored by the real registry.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export interface LongTagProxy {
  host: string;
  /** Requests whose long tag was mapped. */
  mapped: number;
  stop(): Promise<void>;
}

export async function startLongTagProxy(registryHost: string): Promise<LongTagProxy> {
  const state = { mapped: 0 };
  const server: Server = createServer(async (req, res) => {
    try {
      let path = req.url ?? '/';
      const m = /^(\/v2\/.+\/manifests\/)([^/?]{129,})(\?.*)?$/.exec(path);
      if (m !== null) {
        state.mapped++;
        path = `${m[1]}l-${createHash('sha256').update(m[2]!).digest('hex').slice(0, 40)}${m[3] ?? ''}`;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
      const up = await fetch(`http://${registryHost}${path}`, {
        method: req.method ?? 'GET',
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        redirect: 'manual',
      });
      const location = up.headers.get('location');
      const out = Object.fromEntries(
        [...up.headers.entries()].filter(([k]) => !['content-encoding', 'transfer-encoding', 'connection', 'location'].includes(k)),
      );
      // Upload locations name the real registry: point them back at the proxy.
      if (location !== null) out['location'] = location.replace(`http://${registryHost}`, '');
      res.writeHead(up.status, out);
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(await up.arrayBuffer()));
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    get mapped() {
      return state.mapped;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
