/**
 * ttrpc framing (src/nri/ttrpc.ts) as github.com/containerd/ttrpc PROTOCOL.md specifies it: the
 * 10-byte header, reassembly across any chunking, the 4 MiB cap (an oversized message is skipped
 * without being buffered and reported), and the protobuf envelopes. The reader must never throw on
 * garbage.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Code,
  decodeRequest,
  decodeResponse,
  encodeHeader,
  encodeRequest,
  encodeResponse,
  isOversized,
  MessageType,
  TTRPC_HEADER_LENGTH,
  TTRPC_MAX_DATA,
  TtrpcReader,
} from '../../src/nri/ttrpc.js';

const message = (streamId: number, type: number, data: Buffer, flags = 0): Buffer => Buffer.concat([encodeHeader(data.length, streamId, type, flags), data]);

describe('ttrpc framing', () => {
  it('writes the header as the specification lays it out: length, stream ID (big-endian u32), type, flags', () => {
    const h = encodeHeader(0x01020304, 0x0a0b0c0d, MessageType.Response, 0x04);
    assert.equal(h.length, TTRPC_HEADER_LENGTH);
    assert.deepEqual([...h], [1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 4]);
  });

  it('reassembles messages split at every byte, and splits messages that share a chunk', () => {
    const a = message(1, MessageType.Request, Buffer.from('first'));
    const b = message(3, MessageType.Request, Buffer.alloc(0));
    const c = message(5, MessageType.Data, Buffer.alloc(5000, 7), 0x1);
    const all = Buffer.concat([a, b, c]);
    const byByte = new TtrpcReader();
    const got = [];
    for (const byte of all) got.push(...byByte.push(Buffer.from([byte])));
    const atOnce = new TtrpcReader().push(all);
    for (const msgs of [got, atOnce]) {
      assert.equal(msgs.length, 3);
      assert.deepEqual(
        msgs.map((m) => [m.streamId, m.type, m.flags]),
        [
          [1, 1, 0],
          [3, 1, 0],
          [5, 3, 1],
        ],
      );
      assert.equal((msgs[0] as { data: Buffer }).data.toString(), 'first');
      assert.equal((msgs[1] as { data: Buffer }).data.length, 0);
      assert.equal((msgs[2] as { data: Buffer }).data.length, 5000);
    }
    assert.equal(byByte.pending, 0);
  });

  it('holds an incomplete message until the rest arrives', () => {
    const r = new TtrpcReader();
    const m = message(7, MessageType.Response, Buffer.from('0123456789'));
    assert.deepEqual(r.push(m.subarray(0, 14)), []);
    assert.equal(r.pending, 14);
    const [done] = r.push(m.subarray(14));
    assert.equal((done as { data: Buffer }).data.toString(), '0123456789');
  });

  it('skips a message over 4 MiB without buffering it, reports it, and reads the next one', () => {
    const r = new TtrpcReader();
    const declared = TTRPC_MAX_DATA + 1;
    const out = r.push(encodeHeader(declared, 9, MessageType.Request, 0));
    assert.equal(out.length, 1);
    assert.ok(isOversized(out[0]!));
    assert.equal(out[0]!.streamId, 9);
    assert.equal((out[0] as { oversized: number }).oversized, declared);
    // The body arrives in pieces and is dropped as it comes.
    const piece = Buffer.alloc(1 << 20);
    for (let sent = 0; sent < declared; sent += piece.length) {
      assert.deepEqual(r.push(piece.subarray(0, Math.min(piece.length, declared - sent))), []);
      assert.ok(r.pending < TTRPC_HEADER_LENGTH, 'the oversized body is never held');
    }
    const [next] = r.push(message(11, MessageType.Request, Buffer.from('after')));
    assert.equal((next as { data: Buffer }).data.toString(), 'after');
  });

  it('accepts a message of exactly 4 MiB (the limit is inclusive)', () => {
    const [m] = new TtrpcReader().push(message(1, MessageType.Request, Buffer.alloc(TTRPC_MAX_DATA)));
    assert.ok(m && !isOversized(m));
  });

  it('never throws on arbitrary bytes in arbitrary chunks, and keeps at most one message buffered', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 40 }), (chunks) => {
        const r = new TtrpcReader(1024);
        for (const c of chunks) r.push(Buffer.from(c));
        assert.ok(r.pending <= TTRPC_HEADER_LENGTH + 1024);
      }),
      { numRuns: 500 },
    );
  });
});

describe('ttrpc envelopes', () => {
  it('round-trips a Request with its deadline and a Response with an error status', () => {
    const req = decodeRequest(
      encodeRequest({ service: 'nri.pkg.api.v1alpha1.Plugin', method: 'CreateContainer', payload: Buffer.from([1, 2, 3]), timeoutNano: 2e9 }),
    );
    assert.deepEqual(req, { service: 'nri.pkg.api.v1alpha1.Plugin', method: 'CreateContainer', payload: Buffer.from([1, 2, 3]), timeoutNano: 2e9 });
    const res = decodeResponse(encodeResponse({ status: { code: Code.PERMISSION_DENIED, message: 'signet: rejected' } }));
    assert.deepEqual(res.status, { code: Code.PERMISSION_DENIED, message: 'signet: rejected' });
    assert.equal(res.payload.length, 0);
  });

  it('encodes an OK response without a status (as ttrpc-go leaves it nil) and with the payload', () => {
    const bytes = encodeResponse({ payload: Buffer.from('x') });
    // field 2 (payload), length 1, 'x': nothing for field 1.
    assert.deepEqual([...bytes], [0x12, 1, 0x78]);
    assert.deepEqual(decodeResponse(bytes), { status: { code: 0, message: '' }, payload: Buffer.from('x') });
  });

  it('throws on bytes that are not a Request (the peer turns that into INVALID_ARGUMENT)', () => {
    assert.throws(() => decodeRequest(Buffer.from([0x0a, 0x20, 0x41])), /index out of range|invalid/i);
  });
});
