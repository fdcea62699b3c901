/**
 * signetd's HTTP/1.1 face for the shell verifier (verifier/signet-verifier.sh): `POST /v1/verify` on its
 * own unix socket (mode 0600, like the gRPC one), the form of verify-http-form.ts in, one line of text out.
 *
 * Why a second door: containerd runs the verifier once per pull, and a Node process costs about 60 ms
 * of CPU before it does anything (100 at once on two cores took longer than containerd's 10 s limit).
 * `sh` + `curl --unix-socket` costs about a fifth of that (`npm run bench`). The answer goes through the same path as gRPC
 * VerifyImage (verify-image.ts): the verdict cache, admission control, the decision, the audit line.
 *
 *   200 accepted · 403 refused · 400 malformed request · 413 too large · 503 overloaded · 500 internal error
 *
 * The body is the reason, one line, escaped and bounded (containerd shows it to whoever pulled).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { describeError, SignetError } from '../errors.js';
import { LIMITS, printable } from '../util/printable.js';
import { printableDecision } from '../util/printable-decision.js';
import { UsageError } from '../verifier/contract.js';
import type { Logger } from './logger.js';
import { listenPrivately } from './private-socket.js';
import type { VerifyImagePath } from './verify-image.js';
import { FormError, MAX_FORM_BYTES, parseVerifyForm } from './verify-http-form.js';

export const VERIFY_PATH = '/v1/verify';
/** The body must be complete within this (the Node verifier's stdin limit): a stalled client holds nothing for long. */
const BODY_TIMEOUT_MS = 2000;
/** The verifier's wait when it does not say (its default SIGNET_VERIFIER_TIMEOUT). */
const DEFAULT_CLIENT_TIMEOUT_MS = 8000;
/** What the verifier spent before its request arrived (sh, curl, stdin): taken off its deadline. */
const CLIENT_START_ALLOWANCE_MS = 250;

type Status = 200 | 400 | 403 | 404 | 405 | 413 | 500 | 503;

export class VerifyHttpServer {
  private readonly server: Server;

  constructor(
    private readonly path: VerifyImagePath,
    private readonly log: Logger,
  ) {
    this.server = createServer({ requestTimeout: 30_000, headersTimeout: 5000, maxHeaderSize: 8192 }, (req, res) => this.handle(req, res));
    // A request the HTTP parser refuses still gets an answer, never a stack trace.
    this.server.on('clientError', (_err, socket) => {
      const body = 'malformed HTTP request';
      if (socket.writable)
        socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      else socket.destroy();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const received = Date.now();
    if ((req.url ?? '').split('?')[0] !== VERIFY_PATH) return reply(res, 404, `signetd serves POST ${VERIFY_PATH} here`);
    if (req.method !== 'POST') return reply(res, 405, `signetd serves POST ${VERIFY_PATH} here`);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_FORM_BYTES) return reply(res, 413, 'stdin descriptor is larger than 1 MiB');
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = setTimeout(() => finish(() => reply(res, 400, `stdin was not closed within ${BODY_TIMEOUT_MS} ms`)), BODY_TIMEOUT_MS);
    const finish = (then: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      then();
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_FORM_BYTES) finish(() => reply(res, 413, 'stdin descriptor is larger than 1 MiB'));
      else chunks.push(chunk);
    });
    req.on('error', () => finish(() => res.destroy()));
    req.on('end', () => finish(() => this.decide(Buffer.concat(chunks), received, res)));
  }

  private decide(untrustedBody: Buffer, received: number, res: ServerResponse): void {
    let form;
    try {
      form = parseVerifyForm(untrustedBody);
    } catch (err) {
      if (err instanceof UsageError) return reply(res, err instanceof FormError ? err.status : 400, err.message);
      return reply(res, 500, `internal error (${describeError(err)})`);
    }
    // The verifier's deadline counts from its own start, a little before the request arrived.
    const deadline = received + (form.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS) - CLIENT_START_ALLOWANCE_MS;
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    void this.path.answer(form.request, { deadline, signal: gone.signal }).then((answer) => {
      switch (answer.kind) {
        case 'decision': {
          const d = printableDecision(answer.decision);
          return reply(res, d.ok ? 200 : 403, d.reason || (d.ok ? 'signet: accepted' : 'signet: rejected'));
        }
        case 'overloaded':
          return reply(res, 503, answer.reason);
        case 'abandoned':
          return void res.destroy();
        case 'internal':
          return reply(res, 500, answer.reason);
      }
    });
  }

  /** Bind the unix socket, mode 0600 (private-socket.ts). */
  async listen(socketPath: string): Promise<void> {
    await listenPrivately(
      socketPath,
      () =>
        new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(new SignetError('CONFIG_INVALID', `cannot listen on ${socketPath}: ${err.message}`));
          this.server.once('error', onError);
          this.server.listen(socketPath, () => {
            this.server.off('error', onError);
            resolve();
          });
        }),
    );
    this.server.on('error', (err) => this.log.error('verify socket error', { error: describeError(err) }));
  }

  /** Stop accepting; answers in progress get `graceMs` to finish. */
  async close(graceMs = 3000): Promise<void> {
    if (!this.server.listening) return;
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    clearTimeout(timer);
  }
}

/** One line, escaped and bounded; the connection closes after it (one request per verifier run). */
function reply(res: ServerResponse, status: Status, untrustedLine: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = printable(untrustedLine, LIMITS.reason);
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
}
