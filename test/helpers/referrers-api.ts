/**
 * The OCI 1.1 referrers API in front of Debian's docker-registry (distribution 2.8 does not serve it):
 * GET /v2/<name>/referrers/<digest> answered as the distribution spec says, from the registry's own
 * referrers tag (`sha256-<hex>`), one page at a time with `Link`, without applying `artifactType`
 * (so clients must filter). Everything else is forwarded to the real registry.
 */
import { createServer, type Server } from 'node:http';

export interface ReferrersApi {
  host: string;
  /** Referrers API requests served. */
  served: number;
  stop(): Promise<void>;
}

export async function startReferrersApi(registryHost: string, pageSize = 2): Promise<ReferrersApi> {
  const state = { served: 0 };
  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const m = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
      if (m === null) {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
        const up = await fetch(`http://${registryHost}${req.url}`, {
          method: req.method ?? 'GET',
          headers,
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
          redirect: 'manual',
        });
        res.writeHead(
          up.status,
          Object.fromEntries([...up.headers.entries()].filter(([k]) => !['content-encoding', 'transfer-encoding', 'connection'].includes(k))),
        );
        res.end(Buffer.from(await up.arrayBuffer()));
        return;
      }
      state.served++;
      const idx = await fetch(`http://${registryHost}/v2/${m[1]}/manifests/${m[2]!.replace(':', '-')}`, {
        headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      });
      const manifests = idx.status === 200 ? ((await idx.json()) as { manifests: unknown[] }).manifests : [];
      const page = Number(url.searchParams.get('page') ?? 0);
      const next = (page + 1) * pageSize < manifests.length ? `</v2/${m[1]}/referrers/${m[2]}?page=${page + 1}>; rel="next"` : undefined;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', ...(next ? { link: next } : {}) });
      res.end(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: manifests.slice(page * pageSize, (page + 1) * pageSize),
        }),
      );
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    get served() {
      return state.served;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
