/**
 * A hostile stand-in for signetd on a unix socket (node:http2, as the verifier speaks it): it answers
 * VerifyImage however the test says — a Judgement with any reason, a gRPC error with any message, or
 * an endless stream of bytes — and counts what the verifier let it send.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type FakeAnswer =
  | { judgement: { ok: boolean; reason: string } }
  | { grpcError: { status: number; message: string } }
  /** `bytes` of gRPC body as fast as the verifier takes them (a frame header claiming the lot, then zeros). */
  | { stream: { bytes: number } };

export interface FakeSignetd {
  socket: string;
  /** Body bytes the verifier accepted (write callbacks that fired). */
  bytesSent(): number;
  stop(): Promise<void>;
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Judgement{ok=1, reason=2} in protobuf wire format. */
export function encodeJudgement(ok: boolean, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  return Buffer.concat([Buffer.from([0x08, ok ? 1 : 0]), Buffer.from([0x12]), varint(text.length), text]);
}

function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

export async function startFakeSignetd(answer: FakeAnswer): Promise<FakeSignetd> {
  const dir = mkdtempSync(join(tmpdir(), 'fake-signetd-'));
  const socket = join(dir, 's.sock');
  let sent = 0;
  const server: Http2Server = createServer();
  server.on('stream', (stream: ServerHttp2Stream) => {
    stream.on('error', () => undefined);
    stream.resume(); // the request body is not read
    if ('grpcError' in answer) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': String(answer.grpcError.status), 'grpc-message': encodeURIComponent(answer.grpcError.message) }),
      );
      stream.end();
      return;
    }
    if ('judgement' in answer) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(encodeJudgement(answer.judgement.ok, answer.judgement.reason)));
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const header = Buffer.alloc(5);
    header.writeUInt32BE(Math.min(answer.stream.bytes, 0xffffffff), 1);
    const chunk = Buffer.alloc(256 * 1024);
    let left = answer.stream.bytes;
    const pump = (): void => {
      while (left > 0 && !stream.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        const ok = stream.write(chunk.subarray(0, n), (err) => {
          if (!err) sent += n;
        });
        if (!ok) return void stream.once('drain', pump);
      }
      if (left <= 0 && !stream.destroyed) stream.end();
    };
    stream.write(header);
    pump();
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    bytesSent: () => sent,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        // Sessions a test left open must not hold the server.
        setTimeout(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        }, 500).unref();
      }),
  };
}
