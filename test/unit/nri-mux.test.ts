/**
 * NRI's connection multiplexer (src/nri/mux.ts): frames `connID | length | payload` read in any
 * chunking, a frame over the limit is a protocol error (the connection cannot be resynchronised), and
 * frames we write are at most 4 KiB with the ttrpc header and body in frames of their own (containerd's
 * ttrpc channel reads each frame into a 4 KiB buffer).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MUX_HEADER_LENGTH, MUX_MAX_PAYLOAD, MUX_WRITE_CHUNK, MuxProtocolError, MuxReader, muxFrames, muxHeader } from '../../src/nri/mux.js';

describe('NRI mux', () => {
  it('writes the header as upstream does: connection ID and payload length, big-endian u32 each', () => {
    assert.deepEqual([...muxHeader(2, 0x0102)], [0, 0, 0, 2, 0, 0, 1, 2]);
  });

  it('gives the ttrpc header and body frames of their own, and cuts bodies into 4 KiB frames', () => {
    const header = Buffer.alloc(10, 1);
    const body = Buffer.alloc(MUX_WRITE_CHUNK * 2 + 5, 2);
    const frames = muxFrames(1, [header, body]);
    const lengths: number[] = [];
    for (let i = 0; i < frames.length; i += 2) {
      assert.equal(frames[i]!.readUInt32BE(0), 1);
      assert.equal(frames[i]!.readUInt32BE(4), frames[i + 1]!.length);
      lengths.push(frames[i + 1]!.length);
    }
    assert.deepEqual(lengths, [10, 4096, 4096, 5]);
    assert.deepEqual(muxFrames(1, [Buffer.alloc(0)]), [], 'an empty part is no frame');
  });

  it('reads back what it writes, on several connections, split at every byte', () => {
    const wire = Buffer.concat([
      ...muxFrames(1, [Buffer.from('plugin')]),
      ...muxFrames(2, [Buffer.from('runtime'), Buffer.alloc(5000, 9)]),
      ...muxFrames(7, [Buffer.from('unknown')]),
    ]);
    const r = new MuxReader();
    const frames = [];
    for (const b of wire) frames.push(...r.push(Buffer.from([b])));
    assert.deepEqual(
      frames.map((f) => [f.connId, f.payload.length]),
      [
        [1, 6],
        [2, 7],
        [2, 4096],
        [2, 904],
        [7, 7],
      ],
    );
    assert.equal(frames[0]!.payload.toString(), 'plugin');
  });

  it('accepts a zero-length frame and a frame of the maximum size', () => {
    const r = new MuxReader();
    assert.deepEqual(
      r.push(muxHeader(1, 0)).map((f) => f.payload.length),
      [0],
    );
    const big = Buffer.concat([muxHeader(1, MUX_MAX_PAYLOAD), Buffer.alloc(MUX_MAX_PAYLOAD)]);
    assert.deepEqual(
      r.push(big).map((f) => f.payload.length),
      [MUX_MAX_PAYLOAD],
    );
  });

  it('throws MuxProtocolError for a frame over the limit, without waiting for its bytes, and stays broken', () => {
    const r = new MuxReader();
    assert.throws(
      () => r.push(muxHeader(1, 0xffffffff)),
      (e: Error) => e instanceof MuxProtocolError && /4294967295 bytes on connection 1/.test(e.message),
    );
    assert.throws(() => r.push(muxHeader(1, 1)), MuxProtocolError);
  });

  it('on arbitrary bytes either returns frames or throws MuxProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 40 }), (chunks) => {
        const r = new MuxReader(256);
        try {
          for (const c of chunks) for (const f of r.push(Buffer.from(c))) assert.ok(f.payload.length <= 256);
        } catch (err) {
          assert.ok(err instanceof MuxProtocolError, String(err));
        }
      }),
      { numRuns: 500 },
    );
    assert.equal(MUX_HEADER_LENGTH, 8);
  });
});
