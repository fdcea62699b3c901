/**
 * NRI's connection multiplexer (github.com/containerd/nri pkg/net/multiplex): one unix connection
 * carries several logical byte streams as frames `u32be connID | u32be length | payload`.
 * Connection 1 carries the Plugin service (the runtime calls the plugin), connection 2 the Runtime
 * service (the plugin calls the runtime); ID 0 is reserved.
 *
 * Two facts of containerd's side shape the writer: its mux hands each frame to a ttrpc reader that
 * reads through a 4 KiB buffer, so a frame larger than that buffer fails there (ENOMEM); and it
 * never sends a frame larger than a ttrpc message plus its header. So frames written here are at most
 * 4 KiB, and frames read here are capped at that maximum: a longer one means the stream is garbage
 * and the connection is closed by the caller (there is no way to resynchronise).
 */
import { TTRPC_HEADER_LENGTH, TTRPC_MAX_DATA } from './ttrpc.js';
import { ByteQueue } from './byte-queue.js';

export const MUX_HEADER_LENGTH = 8;
export const PLUGIN_SERVICE_CONN = 1;
export const RUNTIME_SERVICE_CONN = 2;
/** The largest frame payload upstream ever sends: one ttrpc message with its header. */
export const MUX_MAX_PAYLOAD = TTRPC_HEADER_LENGTH + TTRPC_MAX_DATA;
/** Frames we write stay within the 4 KiB read buffer of the runtime's ttrpc channel. */
export const MUX_WRITE_CHUNK = 4096;

export class MuxProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MuxProtocolError';
  }
}

export interface MuxFrame {
  connId: number;
  payload: Buffer;
}

/**
 * Incremental frame reader: push bytes in any chunking, get complete frames back. Throws
 * MuxProtocolError for a frame longer than `maxPayload`; after that the reader is unusable.
 */
export class MuxReader {
  private readonly queue = new ByteQueue();
  private broken: MuxProtocolError | undefined;

  constructor(private readonly maxPayload = MUX_MAX_PAYLOAD) {}

  push(chunk: Buffer): MuxFrame[] {
    if (this.broken) throw this.broken;
    this.queue.push(chunk);
    const frames: MuxFrame[] = [];
    while (this.queue.length >= MUX_HEADER_LENGTH) {
      const head = this.queue.peek(MUX_HEADER_LENGTH);
      const connId = head.readUInt32BE(0);
      const length = head.readUInt32BE(4);
      if (length > this.maxPayload) {
        this.broken = new MuxProtocolError(`mux frame of ${length} bytes on connection ${connId} is over the ${this.maxPayload}-byte limit`);
        throw this.broken;
      }
      if (this.queue.length < MUX_HEADER_LENGTH + length) break;
      this.queue.drop(MUX_HEADER_LENGTH);
      frames.push({ connId, payload: this.queue.take(length) });
    }
    return frames;
  }
}

export function muxHeader(connId: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(MUX_HEADER_LENGTH);
  h.writeUInt32BE(connId >>> 0, 0);
  h.writeUInt32BE(length >>> 0, 4);
  return h;
}

/**
 * The frames for `parts` on `connId`: each part (a ttrpc header, a ttrpc body) starts a frame of its
 * own, and no frame carries more than `chunk` bytes. Empty parts produce no frame.
 */
export function muxFrames(connId: number, parts: Buffer[], chunk = MUX_WRITE_CHUNK): Buffer[] {
  const out: Buffer[] = [];
  for (const part of parts) {
    for (let at = 0; at < part.length; at += chunk) {
      const piece = part.subarray(at, Math.min(part.length, at + chunk));
      out.push(muxHeader(connId, piece.length), piece);
    }
  }
  return out;
}
