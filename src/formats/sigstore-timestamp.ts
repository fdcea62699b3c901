/**
 * What sigstore asks of an RFC 3161 timestamp (a sigstore bundle's timestampVerificationData, cosign's
 * `dev.sigstore.cosign/timestamp`), beyond the strict reading every format shares (./rfc3161/token.ts):
 * the imprint is over the signature, checked by @sigstore/verify, which also verifies the token's
 * signature and the authority's chain at genTime; the authorities are the trusted root's; and every
 * certificate the token embeds must be a timestamp-authority certificate of that trusted root — sigstore-go
 * verifies the embedded chain, @sigstore/verify uses only the trusted root's, so here an embedded
 * certificate that was altered or names another authority is refused rather than ignored.
 */
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { SignetError } from '../errors.js';
import { readTimestampResponse, type TimestampToken } from './rfc3161/token.js';

/** Every timestamp-authority certificate (DER) the trusted root lists. */
function trustedTsaCertificates(trustedRoot: unknown): Buffer[] {
  return TrustedRoot.fromJSON(trustedRoot).timestampAuthorities.flatMap((t) => (t.certChain?.certificates ?? []).map((c) => Buffer.from(c.rawBytes)));
}

/**
 * Read `untrustedResponse` (a TimeStampResp, DER) strictly and check its embedded certificates against
 * the trusted root; `where` names it in errors. Throws a SignetError; returns the token read.
 */
export function checkTimestampResponse(untrustedResponse: Buffer, trustedRoot: unknown, where: string): TimestampToken {
  const token = readTimestampResponse(untrustedResponse, where);
  const trusted = trustedTsaCertificates(trustedRoot);
  if (trusted.length === 0)
    throw new SignetError(
      'CERTIFICATE_INVALID',
      `${where} cannot be trusted: the trust material names no timestamp authority (a trusted root with one is needed)`,
    );
  token.certificates.forEach((c, i) => {
    if (!trusted.some((t) => t.equals(c)))
      throw new SignetError('CERTIFICATE_INVALID', `${where}: embedded certificate ${i} is not a timestamp-authority certificate of the trusted root`);
  });
  return token;
}
