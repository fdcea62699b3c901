/** Notary Project (Notation) signatures: JWS and COSE envelopes, verified against a trust store. */
export { verifyNotationSignature, parseNotationEnvelope, type NotationVerifyOptions, type NotationVerifyResult, type NotationSigner } from './verify.js';
export {
  COSE_MEDIA_TYPE,
  JWS_MEDIA_TYPE,
  NOTATION_PAYLOAD_CONTENT_TYPE,
  SIGNING_SCHEMES,
  type NotationAlgorithm,
  type NotationEnvelopeMediaType,
  type SigningScheme,
  type UntrustedNotationEnvelope,
} from './envelope.js';
export { parseTrustedIdentity, dnMatches, formatDn, parseDerName, X509_SUBJECT_PREFIX } from './dn.js';

/** The artifact type (or legacy config media type) of a Notation signature manifest. */
export const NOTATION_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
