/**
 * One ttrpc endpoint on one logical connection: it serves the methods it has handlers for (requests
 * from the other side) and makes calls of its own (responses matched by stream ID). Unary only, which
 * is all NRI uses. Whatever arrives — a request that is not a ttrpc.Request, an unknown method, a
 * streaming request, an oversized message, a response nobody waits for — is answered with an error
 * status or dropped, and counted; nothing the peer sends makes this throw.
 */
import {
  Code,
  codeName,
  decodeRequest,
  decodeResponse,
  encodeHeader,
  encodeRequest,
  encodeResponse,
  Flags,
  isOversized,
  MessageType,
  TtrpcError,
  TtrpcReader,
  type TtrpcMessage,
  type OversizedMessage,
} from './ttrpc.js';

export interface CallInfo {
  service: string;
  method: string;
  /** The caller's deadline, nanoseconds from when it sent the request; 0 when none. */
  timeoutNano: number;
}

/** Serves one method: the request's payload in, the reply's payload out; throw TtrpcError for a status. */
export type Handler = (payload: Buffer, call: CallInfo) => Promise<Uint8Array> | Uint8Array;

export interface PeerStats {
  requests: number;
  /** Requests answered with an error status because of what they were (malformed, unknown, streaming, oversized). */
  rejectedRequests: number;
  /** Messages dropped: responses to no call, data messages, unknown types. */
  dropped: number;
}

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class TtrpcPeer {
  private readonly reader = new TtrpcReader();
  private nextStreamId = 1;
  private lastRequestStream = 0;
  private readonly pending = new Map<number, Pending>();
  private closed: Error | undefined;
  readonly stats: PeerStats = { requests: 0, rejectedRequests: 0, dropped: 0 };

  /**
   * `send` writes one ttrpc message given as [header, data] (the mux frames each part separately).
   * `handlers` are keyed `service/method`. `onIssue` hears about each request answered with an error
   * because it was malformed or unknown, and each dropped message (for a log line).
   */
  constructor(
    private readonly send: (parts: Buffer[]) => void,
    private readonly handlers: ReadonlyMap<string, Handler> = new Map(),
    private readonly onIssue: (what: string) => void = () => undefined,
  ) {}

  /** Bytes that arrived on this logical connection. */
  receive(bytes: Buffer): void {
    if (this.closed) return;
    for (const m of this.reader.push(bytes)) this.dispatch(m);
  }

  private dispatch(m: TtrpcMessage | OversizedMessage): void {
    if (isOversized(m)) {
      if (m.type === MessageType.Request) {
        this.stats.rejectedRequests++;
        this.onIssue(`request of ${m.oversized} bytes on stream ${m.streamId} is over the limit`);
        this.respond(m.streamId, { code: Code.RESOURCE_EXHAUSTED, message: `message length ${m.oversized} exceeds the maximum message size` });
      } else {
        const call = this.pending.get(m.streamId);
        if (call && m.type === MessageType.Response)
          this.settle(m.streamId, undefined, new TtrpcError(Code.RESOURCE_EXHAUSTED, `response of ${m.oversized} bytes exceeds the maximum message size`));
        else this.drop(`oversized message of type ${m.type} on stream ${m.streamId}`);
      }
      return;
    }
    switch (m.type) {
      case MessageType.Request:
        this.onRequest(m);
        return;
      case MessageType.Response:
        this.onResponse(m);
        return;
      default:
        this.drop(`${m.type === MessageType.Data ? 'stream data' : `message of unknown type ${m.type}`} on stream ${m.streamId}`);
    }
  }

  private onRequest(m: TtrpcMessage): void {
    this.stats.requests++;
    const reject = (code: number, message: string): void => {
      this.stats.rejectedRequests++;
      this.onIssue(`${message} (stream ${m.streamId})`);
      this.respond(m.streamId, { code, message });
    };
    if (m.streamId % 2 !== 1) return reject(Code.INVALID_ARGUMENT, 'StreamID must be odd for client initiated streams');
    if (m.streamId <= this.lastRequestStream) return reject(Code.INVALID_ARGUMENT, 'StreamID cannot be re-used and must increment');
    this.lastRequestStream = m.streamId;
    if (m.flags & (Flags.RemoteOpen | Flags.RemoteClosed)) return reject(Code.UNIMPLEMENTED, 'streaming requests are not supported');
    let request;
    try {
      request = decodeRequest(m.data);
    } catch (err) {
      return reject(Code.INVALID_ARGUMENT, `unmarshal request error: ${(err as Error).message}`);
    }
    const handler = this.handlers.get(`${request.service}/${request.method}`);
    if (!handler) {
      const known = [...this.handlers.keys()].some((k) => k.startsWith(`${request.service}/`));
      return reject(
        Code.UNIMPLEMENTED,
        known ? `method ${request.method} of service ${request.service} not implemented` : `service ${request.service} not implemented`,
      );
    }
    const streamId = m.streamId;
    const info: CallInfo = { service: request.service, method: request.method, timeoutNano: request.timeoutNano };
    let result: Promise<Uint8Array>;
    try {
      result = Promise.resolve(handler(request.payload, info));
    } catch (err) {
      result = Promise.reject(err as Error);
    }
    result.then(
      (payload) => this.respond(streamId, undefined, payload),
      (err: unknown) => {
        const status =
          err instanceof TtrpcError
            ? { code: err.code, message: err.message }
            : { code: Code.INTERNAL, message: err instanceof Error ? err.message : String(err) };
        this.respond(streamId, status);
      },
    );
  }

  private onResponse(m: TtrpcMessage): void {
    if (!this.pending.has(m.streamId)) return this.drop(`response on stream ${m.streamId}, which no call is waiting for`);
    let response;
    try {
      response = decodeResponse(m.data);
    } catch (err) {
      return this.settle(m.streamId, undefined, new TtrpcError(Code.INTERNAL, `malformed response: ${(err as Error).message}`));
    }
    if (response.status.code !== Code.OK)
      return this.settle(m.streamId, undefined, new TtrpcError(response.status.code, response.status.message || codeName(response.status.code)));
    this.settle(m.streamId, response.payload);
  }

  private drop(what: string): void {
    this.stats.dropped++;
    this.onIssue(`dropped ${what}`);
  }

  private respond(streamId: number, status?: { code: number; message: string }, payload?: Uint8Array): void {
    if (this.closed) return;
    const body = encodeResponse({ ...(status ? { status } : {}), ...(payload ? { payload } : {}) });
    this.send([encodeHeader(body.length, streamId, MessageType.Response, 0), body]);
  }

  /** Call `service/method` on the other side; rejects with TtrpcError on an error status or after `timeoutMs`. */
  call(service: string, method: string, payload: Uint8Array, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.closed);
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    const body = encodeRequest({ service, method, payload, timeoutNano: timeoutMs * 1e6 });
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(streamId, undefined, new TtrpcError(Code.DEADLINE_EXCEEDED, `${service}/${method}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.pending.set(streamId, { resolve, reject, timer });
      this.send([encodeHeader(body.length, streamId, MessageType.Request, 0), body]);
    });
  }

  private settle(streamId: number, payload?: Buffer, err?: Error): void {
    const call = this.pending.get(streamId);
    if (!call) return;
    this.pending.delete(streamId);
    clearTimeout(call.timer);
    if (err) call.reject(err);
    else call.resolve(payload ?? Buffer.alloc(0));
  }

  /** No more sending; calls still waiting fail with `reason`. */
  close(reason: Error): void {
    if (this.closed) return;
    this.closed = reason;
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, reason);
  }

  /** Bytes held for an incomplete message (for tests). */
  get buffered(): number {
    return this.reader.pending;
  }
}
