/**
 * One unary gRPC call over HTTP/2 on a unix socket, with node:http2 only (the gRPC HTTP/2 protocol:
 * POST /package.Service/Method, `application/grpc`, 5-byte length-prefixed messages, status in trailers).
 * Loading @grpc/grpc-js would cost the verifier more start-up time than everything else it does.
 */
import { connect } from 'node:http2';
import { connect as netConnect } from 'node:net';

export class CallError extends Error {
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'deadline' | 'status' | 'protocol' | 'too-large',
  ) {
    super(message);
  }
}

/**
 * The most the verifier reads of an answer (the 5-byte frame included). A Judgement is a few KiB; a
 * peer that sends more is not a signetd worth believing, and buffering it would let it exhaust memory.
 */
export const MAX_ANSWER_BYTES = 1 << 20;
/** The most header bytes (grpc-status, grpc-message…) accepted from the peer. */
const MAX_HEADER_LIST_BYTES = 64 * 1024;

export function unaryCall(socketPath: string, path: string, request: Buffer, deadlineMs: number, maxAnswerBytes = MAX_ANSWER_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    // Errors of the socket itself (ENOENT, ECONNREFUSED, EACCES) say more than the stream's cancel code.
    const socket = netConnect(socketPath);
    socket.on('error', (err: NodeJS.ErrnoException) => finish(new CallError(err.code ?? err.message, 'unreachable')));
    const session = connect('http://localhost', {
      createConnection: () => socket,
      settings: { maxHeaderListSize: MAX_HEADER_LIST_BYTES },
      maxSessionMemory: 4,
    });
    const finish = (err: CallError | undefined, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new CallError(`no answer within ${deadlineMs} ms`, 'deadline')), deadlineMs);
    session.on('error', (err: NodeJS.ErrnoException) => finish(new CallError(err.code ?? err.message, 'unreachable')));

    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    request.copy(frame, 5);
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.max(1, Math.floor(deadlineMs))}m`,
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    const readStatus = (headers: Record<string, unknown>): void => {
      if (headers['grpc-status'] !== undefined) {
        status = String(headers['grpc-status']);
        message = decodeGrpcMessage(String(headers['grpc-message'] ?? ''));
      }
    };
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) finish(new CallError(`HTTP status ${headers[':status']}`, 'protocol'));
      readStatus(headers);
    });
    stream.on('trailers', readStatus);
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Fail closed the moment the answer outgrows the cap: stop reading, drop the connection.
      if (received > maxAnswerBytes) return finish(new CallError(`the answer is larger than ${maxAnswerBytes} bytes`, 'too-large'));
      chunks.push(chunk);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => setImmediate(() => finish(new CallError(err.code ?? err.message, 'unreachable'))));
    stream.on('end', () => {
      if (status === undefined) return finish(new CallError('no grpc-status in the answer', 'protocol'));
      if (status !== '0') return finish(new CallError(`gRPC status ${status}: ${message}`, 'status'));
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body[0] !== 0) return finish(new CallError('malformed gRPC message', 'protocol'));
      const len = body.readUInt32BE(1);
      if (body.length !== 5 + len) return finish(new CallError('malformed gRPC message length', 'protocol'));
      finish(undefined, body.subarray(5));
    });
    stream.end(frame);
  });
}

function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
