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
} as const;
