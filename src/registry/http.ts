/**
 * One HTTP exchange with a deadline and a size cap: the timeout covers headers and body (a server that
 * accepts and never answers, or stalls mid-body, is cut off), and bodies are read only up to the cap.
 */
import { SignetError } from '../errors.js';

export interface HttpResponse {
  status: number;
  headers: Headers;
  url: string;
  body: Buffer;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
  /** What is being done, for error messages: "fetching manifest host/repo:tag". */
  what: string;
}

export async function httpExchange(req: HttpRequest): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
  const fail = (err: unknown): never => {
    if (req.signal?.aborted) throw new SignetError('REGISTRY_TIMEOUT', `${req.what}: cancelled (deadline reached)`);
    if (timeout.aborted) throw new SignetError('REGISTRY_TIMEOUT', `${req.what}: no complete answer within ${req.timeoutMs} ms`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new SignetError('REGISTRY_UNAVAILABLE', `${req.what}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
  };
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body !== undefined ? { body: new Uint8Array(req.body) } : {}),
      signal,
      redirect: 'follow',
    });
  } catch (err) {
    return fail(err);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > req.maxBytes && req.method !== 'HEAD') {
    await res.body?.cancel().catch(() => undefined);
    throw new SignetError('BLOB_TOO_LARGE', `${req.what}: ${declared} bytes is more than the limit of ${req.maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    if (res.body !== null && req.method !== 'HEAD') {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > req.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw new SignetError('BLOB_TOO_LARGE', `${req.what}: more than the limit of ${req.maxBytes} bytes`);
        }
        chunks.push(Buffer.from(value));
      }
    }
  } catch (err) {
    if (err instanceof SignetError) throw err;
    return fail(err);
  }
  return { status: res.status, headers: res.headers, url: res.url, body: Buffer.concat(chunks) };
}
