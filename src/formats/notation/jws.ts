/**
 * Notary Project JWS envelopes (`application/jose+json`): RFC 7515 flattened JSON serialisation.
 * The signature is over ASCII(BASE64URL(protected) || '.' || BASE64URL(payload)) exactly as carried.
 */
import { isPlainObject, parseStrictJson, requireExactKeys } from '../strict-json.js';
import {
  HDR_AUTHENTIC_SIGNING_TIME,
  HDR_EXPIRY,
  HDR_SIGNING_AGENT,
  HDR_SIGNING_SCHEME,
  HDR_SIGNING_TIME,
  HDR_TIMESTAMP_SIGNATURE,
  HDR_VERIFICATION_PLUGIN,
  JWS_MEDIA_TYPE,
  MAX_CHAIN_LENGTH,
  MAX_NOTATION_ENVELOPE_BYTES,
  malformed,
  parseRfc3339,
  type NotationAlgorithm,
  type UntrustedNotationEnvelope,
} from './envelope.js';

const JWS_ALGORITHMS: readonly NotationAlgorithm[] = ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

/** Strict base64url without padding (RFC 7515 §2): any other character is an error, not skipped. */
export function decodeBase64Url(untrusted: unknown, where: string): Buffer {
  if (typeof untrusted !== 'string' || !/^[A-Za-z0-9_-]*$/.test(untrusted)) throw malformed(`${where} is not base64url`);
  const bytes = Buffer.from(untrusted, 'base64url');
  if (bytes.toString('base64url') !== untrusted) throw malformed(`${where} is not canonical base64url`);
  return bytes;
}

/** Strict standard base64 with padding (x5c, RFC 7515 §4.1.6). */
function decodeBase64(untrusted: unknown, where: string): Buffer {
  if (typeof untrusted !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(untrusted) || untrusted.length % 4 !== 0) throw malformed(`${where} is not base64`);
  const bytes = Buffer.from(untrusted, 'base64');
  if (bytes.toString('base64') !== untrusted) throw malformed(`${where} is not canonical base64`);
  return bytes;
}

export function parseJwsEnvelope(untrustedBytes: Buffer): UntrustedNotationEnvelope {
  const doc = parseStrictJson(untrustedBytes.toString('utf8'), 'notation JWS envelope', 'SIGNATURE_MALFORMED', MAX_NOTATION_ENVELOPE_BYTES);
  if (!isPlainObject(doc)) throw malformed('JWS envelope is not a JSON object');
  if ('signatures' in doc) throw malformed('JWS envelope uses the general serialisation; Notary Project signatures use the flattened one');
  requireExactKeys(doc, ['payload', 'protected', 'header', 'signature'], [], 'notation JWS envelope');
  const protectedB64 = doc['protected'];
  const payloadB64 = doc['payload'];
  const protectedBytes = decodeBase64Url(protectedB64, 'JWS protected header');
  const untrustedPayload = decodeBase64Url(payloadB64, 'JWS payload');
  const untrustedSignature = decodeBase64Url(doc['signature'], 'JWS signature');
  if (untrustedSignature.length === 0) throw malformed('JWS signature is empty');

  const hdr = parseStrictJson(protectedBytes.toString('utf8'), 'notation JWS protected header', 'SIGNATURE_MALFORMED');
  if (!isPlainObject(hdr)) throw malformed('JWS protected header is not a JSON object');
  const alg = hdr['alg'];
  if (typeof alg !== 'string') throw malformed('JWS protected header has no "alg"');
  if (!(JWS_ALGORITHMS as readonly string[]).includes(alg))
    throw malformed(`JWS algorithm ${JSON.stringify(alg)} is not allowed (PS256/384/512, ES256/384/512)`);
  const cty = hdr['cty'];
  if (typeof cty !== 'string') throw malformed('JWS protected header has no "cty"');
  const crit = hdr['crit'];
  if (!Array.isArray(crit) || crit.length === 0 || !crit.every((c) => typeof c === 'string'))
    throw malformed('JWS protected header has no "crit" list of names');
  const scheme = hdr[HDR_SIGNING_SCHEME];
  if (typeof scheme !== 'string') throw malformed(`JWS protected header has no "${HDR_SIGNING_SCHEME}"`);
  const plugin = hdr[HDR_VERIFICATION_PLUGIN];
  if (plugin !== undefined && typeof plugin !== 'string') throw malformed(`JWS "${HDR_VERIFICATION_PLUGIN}" is not a string`);

  const unprotected = doc['header'];
  if (!isPlainObject(unprotected)) throw malformed('JWS unprotected header is not a JSON object');
  // The unprotected header is not signed: as notation-go (Go's encoding/json) reads it, field names match
  // case-insensitively and unknown fields are ignored. Two fields that name the same one are refused.
  const field = (name: string): unknown => {
    const keys = Object.keys(unprotected).filter((k) => k.toLowerCase() === name.toLowerCase());
    if (keys.length > 1)
      throw malformed(`JWS unprotected header names "${name}" ${keys.length} times (${keys.map((k) => JSON.stringify(k.slice(0, 64))).join(', ')})`);
    return keys[0] === undefined ? undefined : unprotected[keys[0]];
  };
  const x5c = field('x5c');
  if (x5c === undefined) throw malformed('notation JWS unprotected header: missing "x5c"');
  if (!Array.isArray(x5c) || x5c.length === 0) throw malformed('JWS "x5c" is not a non-empty list of certificates');
  if (x5c.length > MAX_CHAIN_LENGTH) throw malformed(`JWS "x5c" has more than ${MAX_CHAIN_LENGTH} certificates`);
  const agent = field(HDR_SIGNING_AGENT);
  if (agent !== undefined && typeof agent !== 'string') throw malformed(`JWS "${HDR_SIGNING_AGENT}" is not a string`);
  const tsa = field(HDR_TIMESTAMP_SIGNATURE);
  const untrustedTimestampSignature = tsa !== undefined ? decodeBase64(tsa, `JWS "${HDR_TIMESTAMP_SIGNATURE}"`) : undefined;

  return {
    envelopeMediaType: JWS_MEDIA_TYPE,
    alg: alg as NotationAlgorithm,
    contentType: cty,
    critical: crit as string[],
    protectedHeaderNames: Object.keys(hdr),
    signingScheme: scheme,
    ...(hdr[HDR_SIGNING_TIME] !== undefined ? { signingTime: parseRfc3339(hdr[HDR_SIGNING_TIME], `JWS "${HDR_SIGNING_TIME}"`) } : {}),
    ...(hdr[HDR_AUTHENTIC_SIGNING_TIME] !== undefined
      ? { authenticSigningTime: parseRfc3339(hdr[HDR_AUTHENTIC_SIGNING_TIME], `JWS "${HDR_AUTHENTIC_SIGNING_TIME}"`) }
      : {}),
    ...(hdr[HDR_EXPIRY] !== undefined ? { expiry: parseRfc3339(hdr[HDR_EXPIRY], `JWS "${HDR_EXPIRY}"`) } : {}),
    ...(plugin !== undefined ? { verificationPlugin: plugin } : {}),
    signingInput: Buffer.from(`${protectedB64 as string}.${payloadB64 as string}`, 'ascii'),
    untrustedSignature,
    untrustedPayload,
    untrustedCertificateChain: x5c.map((c, i) => decodeBase64(c, `JWS "x5c"[${i}]`)),
    ...(agent !== undefined ? { signingAgent: agent } : {}),
    hasTimestampSignature: tsa !== undefined,
    ...(untrustedTimestampSignature !== undefined ? { untrustedTimestampSignature } : {}),
  };
}
