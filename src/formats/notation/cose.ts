/**
 * Notary Project COSE envelopes (`application/cose`): a tagged COSE_Sign1 (RFC 9052, tag 18)
 *
 *     COSE_Sign1 = [ protected: bstr .cbor header_map, unprotected: header_map, payload: bstr, signature: bstr ]
 *
 * signed over Sig_structure = ["Signature1", protected (the exact bytes carried), external_aad = h'', payload].
 * Times are CBOR tag 1 (epoch) values; the certificate chain is x5chain (label 33) in the unprotected header.
 */
import { decode, encode, Tag } from 'cbor2';
import {
  COSE_MEDIA_TYPE,
  HDR_AUTHENTIC_SIGNING_TIME,
  HDR_EXPIRY,
  HDR_SIGNING_AGENT,
  HDR_SIGNING_SCHEME,
  HDR_SIGNING_TIME,
  HDR_TIMESTAMP_SIGNATURE,
  HDR_VERIFICATION_PLUGIN,
  MAX_CHAIN_LENGTH,
  MAX_NOTATION_ENVELOPE_BYTES,
  malformed,
  type NotationAlgorithm,
  type UntrustedNotationEnvelope,
} from './envelope.js';

export const COSE_SIGN1_TAG = 18;
const LABEL_ALG = 1;
const LABEL_CRIT = 2;
const LABEL_CONTENT_TYPE = 3;
const LABEL_X5CHAIN = 33;

/** COSE algorithm identifiers (IANA COSE Algorithms registry) for the allowed algorithms. */
export const COSE_ALGORITHMS: ReadonlyMap<number, NotationAlgorithm> = new Map([
  [-37, 'PS256'],
  [-38, 'PS384'],
  [-39, 'PS512'],
  [-7, 'ES256'],
  [-35, 'ES384'],
  [-36, 'ES512'],
]);

const DECODE_OPTIONS = { rejectDuplicateKeys: true, preferMap: true, rejectStreaming: true } as const;

function strictDecode(bytes: Uint8Array, where: string): unknown {
  try {
    return decode(bytes, DECODE_OPTIONS);
  } catch (err) {
    throw malformed(`${where} is not valid CBOR: ${(err as Error).message}`);
  }
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** A plain Uint8Array copy: cbor2 encodes a Node Buffer as an object, not as a byte string. */
function plainBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

function labelText(label: unknown): string {
  if (typeof label === 'number' || typeof label === 'string') return String(label);
  throw malformed(`COSE header label of type ${typeof label} is not allowed`);
}

function cborTime(v: unknown, where: string): Date {
  // Tag 1 (epoch-based date/time) is decoded by cbor2 into a Date.
  if (!(v instanceof Date) || Number.isNaN(v.getTime())) throw malformed(`COSE ${where} is not a tag 1 time`);
  return v;
}

export function parseCoseEnvelope(untrustedBytes: Buffer): UntrustedNotationEnvelope {
  if (untrustedBytes.length > MAX_NOTATION_ENVELOPE_BYTES) throw malformed(`COSE envelope is larger than ${MAX_NOTATION_ENVELOPE_BYTES} bytes`);
  const top = strictDecode(untrustedBytes, 'COSE envelope');
  if (!(top instanceof Tag) || Number(top.tag) !== COSE_SIGN1_TAG) throw malformed('COSE envelope is not a tagged COSE_Sign1 (tag 18)');
  const parts = top.contents;
  if (!Array.isArray(parts) || parts.length !== 4) throw malformed('COSE_Sign1 is not an array of four items');
  const [protectedBstr, unprotected, payload, signature] = parts as unknown[];
  if (!isBytes(protectedBstr) || protectedBstr.length === 0) throw malformed('COSE protected header is not a non-empty byte string');
  if (!isBytes(payload)) throw malformed('COSE payload is missing (detached payloads are not Notary Project signatures)');
  if (!isBytes(signature) || signature.length === 0) throw malformed('COSE signature is not a non-empty byte string');
  if (!(unprotected instanceof Map)) throw malformed('COSE unprotected header is not a map');

  const hdr = strictDecode(protectedBstr, 'COSE protected header');
  if (!(hdr instanceof Map)) throw malformed('COSE protected header is not a map');
  const names = [...hdr.keys()].map(labelText);

  const algId = hdr.get(LABEL_ALG);
  if (typeof algId !== 'number') throw malformed('COSE protected header has no integer "alg" (label 1)');
  const alg = COSE_ALGORITHMS.get(algId);
  if (alg === undefined) throw malformed(`COSE algorithm ${algId} is not allowed (PS256/384/512, ES256/384/512)`);
  const crit = hdr.get(LABEL_CRIT);
  if (!Array.isArray(crit) || crit.length === 0) throw malformed('COSE protected header has no "crit" list (label 2)');
  const critical = crit.map(labelText);
  const cty = hdr.get(LABEL_CONTENT_TYPE);
  if (typeof cty !== 'string') throw malformed('COSE protected header has no text "content type" (label 3)');
  const scheme = hdr.get(HDR_SIGNING_SCHEME);
  if (typeof scheme !== 'string') throw malformed(`COSE protected header has no "${HDR_SIGNING_SCHEME}"`);
  const plugin = hdr.get(HDR_VERIFICATION_PLUGIN);
  if (plugin !== undefined && typeof plugin !== 'string') throw malformed(`COSE "${HDR_VERIFICATION_PLUGIN}" is not a string`);

  for (const key of unprotected.keys()) {
    if (key !== LABEL_X5CHAIN && key !== HDR_SIGNING_AGENT && key !== HDR_TIMESTAMP_SIGNATURE)
      throw malformed(`COSE unprotected header has an unknown field ${JSON.stringify(labelText(key))}`);
  }
  const x5chain = unprotected.get(LABEL_X5CHAIN);
  // RFC 9360: one certificate as a bstr, several as an array of bstr.
  const chain = isBytes(x5chain) ? [x5chain] : x5chain;
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every(isBytes))
    throw malformed('COSE unprotected header has no x5chain (label 33) of certificates');
  if (chain.length > MAX_CHAIN_LENGTH) throw malformed(`COSE x5chain has more than ${MAX_CHAIN_LENGTH} certificates`);
  const agent = unprotected.get(HDR_SIGNING_AGENT);
  if (agent !== undefined && typeof agent !== 'string') throw malformed(`COSE "${HDR_SIGNING_AGENT}" is not a string`);
  const tsa = unprotected.get(HDR_TIMESTAMP_SIGNATURE);
  if (tsa !== undefined && !isBytes(tsa)) throw malformed(`COSE "${HDR_TIMESTAMP_SIGNATURE}" is not a byte string`);

  const signingTime = hdr.get(HDR_SIGNING_TIME);
  const authenticSigningTime = hdr.get(HDR_AUTHENTIC_SIGNING_TIME);
  const expiry = hdr.get(HDR_EXPIRY);
  const sigStructure = encode(['Signature1', plainBytes(protectedBstr), new Uint8Array(0), plainBytes(payload)]);
  return {
    envelopeMediaType: COSE_MEDIA_TYPE,
    alg,
    contentType: cty,
    critical,
    protectedHeaderNames: names,
    signingScheme: scheme,
    ...(signingTime !== undefined ? { signingTime: cborTime(signingTime, `"${HDR_SIGNING_TIME}"`) } : {}),
    ...(authenticSigningTime !== undefined ? { authenticSigningTime: cborTime(authenticSigningTime, `"${HDR_AUTHENTIC_SIGNING_TIME}"`) } : {}),
    ...(expiry !== undefined ? { expiry: cborTime(expiry, `"${HDR_EXPIRY}"`) } : {}),
    ...(plugin !== undefined ? { verificationPlugin: plugin } : {}),
    signingInput: Buffer.from(sigStructure),
    untrustedSignature: Buffer.from(signature),
    untrustedPayload: Buffer.from(payload),
    untrustedCertificateChain: (chain as Uint8Array[]).map((c) => Buffer.from(c)),
    ...(agent !== undefined ? { signingAgent: agent } : {}),
    hasTimestampSignature: tsa !== undefined,
    ...(tsa !== undefined ? { untrustedTimestampSignature: Buffer.from(tsa as Uint8Array) } : {}),
  };
}
