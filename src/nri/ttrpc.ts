/**
 * ttrpc framing (containerd's lightweight RPC; github.com/containerd/ttrpc PROTOCOL.md): every message
 * is a 10-byte header — u32be data length, u32be stream ID, u8 type, u8 flags — followed by the data.
 * Requests and responses carry the protobuf envelopes of proto/ttrpc/request.proto.
 *
 * Written for signet (no ttrpc implementation exists on npm); the peer is untrusted input: lengths
 * are capped (4 MiB of data, as the specification says), a message over the cap is skipped without
 * being buffered and reported so that the caller can answer RESOURCE_EXHAUSTED on its stream, and a
 * malformed envelope is an error the caller turns into a status, never an exception that escapes.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../proto-dir.js';
import { ByteQueue } from './byte-queue.js';

export const TTRPC_HEADER_LENGTH = 10;
/** The specification's maximum data length: larger messages are rejected. */
export const TTRPC_MAX_DATA = 4 << 20;

export const MessageType = { Request: 1, Response: 2, Data: 3 } as const;
export const Flags = { RemoteClosed: 0x1, RemoteOpen: 0x2, NoData: 0x4 } as const;

/** gRPC status codes ttrpc carries in google.rpc.Status. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface TtrpcMessage {
  streamId: number;
  type: number;
  flags: number;
  data: Buffer;
}

/** A message whose declared length was over the cap: its data was skipped, not read. */
export interface OversizedMessage {
  streamId: number;
  type: number;
  flags: number;
  oversized: number;
}

export function encodeHeader(length: number, streamId: number, type: number, flags: number): Buffer {
  const h = Buffer.allocUnsafe(TTRPC_HEADER_LENGTH);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(streamId >>> 0, 4);
  h.writeUInt8(type, 8);
  h.writeUInt8(flags, 9);
  return h;
}

/**
 * Incremental reader of one ttrpc byte stream: feed it bytes as they arrive (in any chunking) and
 * it returns the complete messages. Memory stays bounded by `maxData` plus one header.
 */
export class TtrpcReader {
  private readonly queue = new ByteQueue();
  /** Bytes of an oversized message still to skip. */
  private skipping = 0;

  constructor(private readonly maxData = TTRPC_MAX_DATA) {}

  push(chunk: Buffer): Array<TtrpcMessage | OversizedMessage> {
    const out: Array<TtrpcMessage | OversizedMessage> = [];
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
    }
    this.queue.push(chunk);
    for (;;) {
      if (this.skipping > 0 || this.queue.length < TTRPC_HEADER_LENGTH) break;
      const head = this.queue.peek(TTRPC_HEADER_LENGTH);
      const length = head.readUInt32BE(0);
      const streamId = head.readUInt32BE(4);
      const type = head.readUInt8(8);
      const flags = head.readUInt8(9);
      if (length > this.maxData) {
        this.queue.drop(TTRPC_HEADER_LENGTH);
        const n = Math.min(length, this.queue.length);
        this.queue.drop(n);
        this.skipping = length - n;
        out.push({ streamId, type, flags, oversized: length });
        continue;
      }
      if (this.queue.length < TTRPC_HEADER_LENGTH + length) break;
      this.queue.drop(TTRPC_HEADER_LENGTH);
      const data = length === 0 ? Buffer.alloc(0) : this.queue.take(length);
      out.push({ streamId, type, flags, data });
    }
    return out;
  }

  /** Bytes held for an incomplete message. */
  get pending(): number {
    return this.queue.length;
  }
}

export function isOversized(m: TtrpcMessage | OversizedMessage): m is OversizedMessage {
  return (m as OversizedMessage).oversized !== undefined;
}

// --- the protobuf envelopes --------------------------------------------------------------------------

export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Buffer;
  /** The caller's remaining deadline in nanoseconds; 0 when it set none. */
  timeoutNano: number;
}

export interface TtrpcStatus {
  code: number;
  message: string;
}

export interface TtrpcResponse {
  status: TtrpcStatus;
  payload: Buffer;
}

let envelopes: { request: protobuf.Type; response: protobuf.Type } | undefined;

/** Load .proto files of ours (PROTO_DIR) into one root; google/protobuf imports come with protobufjs. */
export function loadOwnProtos(files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
  return root.loadSync(files, { keepCase: true });
}

function types(): { request: protobuf.Type; response: protobuf.Type } {
  if (!envelopes) {
    const root = loadOwnProtos(['ttrpc/request.proto']);
    envelopes = { request: root.lookupType('ttrpc.Request'), response: root.lookupType('ttrpc.Response') };
  }
  return envelopes;
}

/**
 * The bytes as a plain Uint8Array: protobufjs decodes a Node Buffer with a faster reader that clips a
 * string running past the end instead of failing; the plain reader fails, which is what untrusted
 * input needs.
 */
export const strictBytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

const asBuffer = (b: unknown): Buffer => (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.alloc(0));

export function encodeRequest(r: { service: string; method: string; payload: Uint8Array; timeoutNano?: number }): Buffer {
  const t = types().request;
  return asBuffer(t.encode(t.fromObject({ service: r.service, method: r.method, payload: r.payload, timeout_nano: r.timeoutNano ?? 0 })).finish());
}

/** Throws (a protobufjs error) when `data` is not a Request. */
export function decodeRequest(data: Buffer): TtrpcRequest {
  const t = types().request;
  const o = t.toObject(t.decode(strictBytes(data)), { longs: Number, defaults: true }) as {
    service: string;
    method: string;
    payload: Uint8Array;
    timeout_nano: number;
  };
  return { service: o.service, method: o.method, payload: asBuffer(o.payload), timeoutNano: Number(o.timeout_nano) || 0 };
}

export function encodeResponse(r: { status?: TtrpcStatus; payload?: Uint8Array }): Buffer {
  const t = types().response;
  const status = r.status && r.status.code !== Code.OK ? { code: r.status.code, message: r.status.message } : undefined;
  return asBuffer(t.encode(t.fromObject({ ...(status ? { status } : {}), payload: r.payload ?? new Uint8Array(0) })).finish());
}

/** Throws (a protobufjs error) when `data` is not a Response. */
export function decodeResponse(data: Buffer): TtrpcResponse {
  const t = types().response;
  const o = t.toObject(t.decode(strictBytes(data)), { longs: Number, defaults: true }) as {
    status?: { code?: number; message?: string } | null;
    payload: Uint8Array;
  };
  return { status: { code: o.status?.code ?? 0, message: o.status?.message ?? '' }, payload: asBuffer(o.payload) };
}

/** An error status to answer (server side) or that came back (client side). */
export class TtrpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'TtrpcError';
  }
}

export function codeName(code: number): string {
  return Object.entries(Code).find(([, v]) => v === code)?.[0] ?? String(code);
}
