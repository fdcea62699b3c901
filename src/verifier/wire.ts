/**
 * Protocol Buffers wire format for the two messages the verifier exchanges (see
 * proto/signet/v1/verifier.proto). Hand-coded so that the verifier loads no protobuf library:
 * field numbers here must match the .proto; a test checks them against @grpc/proto-loader.
 */
import type { UntrustedDescriptor } from './contract.js';

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(bytes.length)]), bytes]);
}

function stringField(field: number, value: string): Buffer {
  return lengthDelimited(field, Buffer.from(value, 'utf8'));
}

/** VerifyImageRequest{name=1, descriptor=2{media_type=1, digest=2, size=3, annotations=4}}. */
export function encodeVerifyImageRequest(name: string, d: UntrustedDescriptor): Buffer {
  const parts = [stringField(1, d.mediaType), stringField(2, d.digest), Buffer.from([3 << 3, ...varint(d.size)])];
  for (const [k, v] of Object.entries(d.annotations)) {
    parts.push(lengthDelimited(4, Buffer.concat([stringField(1, k), stringField(2, v)])));
  }
  return Buffer.concat([stringField(1, name), lengthDelimited(2, Buffer.concat(parts))]);
}

export interface JudgementLite {
  ok: boolean;
  reason: string;
}

/** Read Judgement{ok=1, reason=2}; every other field is skipped by wire type. */
export function decodeJudgement(buf: Buffer): JudgementLite {
  const out: JudgementLite = { ok: false, reason: '' };
  let pos = 0;
  const readVarint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error('varint too long');
  };
  while (pos < buf.length) {
    const tag = readVarint();
    // A tag is a field number (1 to 2^29 - 1) and a wire type: at most 32 bits. A longer varint would lose
    // its low bits (the wire type) in a double and misalign everything after it.
    if (tag < 8 || tag > 0xffffffff) throw new Error('invalid field tag');
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 1) out.ok = v === 1;
    } else if (wire === 2) {
      const len = readVarint();
      if (pos + len > buf.length) throw new Error('truncated field');
      if (field === 2) out.reason = buf.toString('utf8', pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
    if (pos > buf.length) throw new Error('truncated message');
  }
  return out;
}
