/**
 * Defaults shared by signetd, the CLI's in-process engine and the registry client, in one place so
 * that what a node decides and what `signet verify` says agree. signetd's own settings live in
 * src/daemon/config.ts (DEFAULT_CONFIG), built from these.
 */
export const DEFAULTS = {
  /** One registry request. */
  registryTimeoutMs: 5000,
  /** Retries of a registry request on 429/5xx/reset. */
  registryRetries: 1,
  /** Requests in flight to one registry host. */
  registryConcurrency: 16,
  /** One decision, lookups and verification; below the verifier's own 8 s. */
  verifyTimeoutMs: 7000,
  /** Signatures examined per image. */
  maxSignatures: 32,
  /**
   * Signatures of one tag manifest read per signature examined: with maxSignatures 32, up to 128 layers
   * are read and pre-checked (in process, no round trips) so that stale or hostile ones cannot crowd a
   * valid one out of the 32 examined (engine/signature-order.ts).
   */
  signatureCandidatesFactor: 4,
  /** signetd's HTTP socket for the shell verifier (verifier/signet-verifier.sh, which has the same default). */
  verifySocket: '/run/signet/verify.sock',
  /**
   * How long a registry host that answered 404 to the referrers API is read through the referrers tag
   * schema directly (the distribution spec's fallback), before the API is asked again: one round trip
   * less per uncached decision, and a registry upgraded meanwhile is noticed within this time.
   */
  referrersApiRecheckMs: 5 * 60_000,
} as const;
