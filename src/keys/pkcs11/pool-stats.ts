/**
 * What the PKCS#11 session pools report to the metrics (src/metrics/): sessions open, in use and
 * callers waiting, per token, and failed Cryptoki calls by function and CKR code. Kept apart from
 * ./module.ts so that reading it loads no native binding: the metrics read it at scrape time whether
 * or not a PKCS#11 key was ever used.
 */

/** One token's session pool, now. */
export interface Pkcs11PoolGauge {
  /** The module's path. */
  module: string;
  /** The token's label (or serial, or slot) as the key's URI names it. */
  token: string;
  open: number;
  inUse: number;
  waiters: number;
}

export interface Pkcs11ErrorCount {
  /** The Cryptoki function that failed (C_OpenSession, C_Login, C_Verify…). */
  operation: string;
  /** Its return value by name (CKR_PIN_INCORRECT…), or in hex when the name is unknown. */
  code: string;
  count: number;
}

export interface Pkcs11PoolStats {
  pools(): Pkcs11PoolGauge[];
  errors(): Pkcs11ErrorCount[];
}

const reporters = new Set<() => Pkcs11PoolGauge[]>();
const errorCounts = new Map<string, Pkcs11ErrorCount>();

/** A module reports its pools through `report` from now on. */
export function addPoolReporter(report: () => Pkcs11PoolGauge[]): void {
  reporters.add(report);
}

export function removePoolReporter(report: () => Pkcs11PoolGauge[]): void {
  reporters.delete(report);
}

/** One failed Cryptoki call. */
export function countPkcs11Error(operation: string, code: string): void {
  const key = `${operation}\n${code}`;
  const entry = errorCounts.get(key);
  if (entry) entry.count++;
  else errorCounts.set(key, { operation, code, count: 1 });
}

/** Every pool of every module loaded in this process, and the errors counted since it started. */
export const pkcs11PoolStats: Pkcs11PoolStats = {
  pools: () => [...reporters].flatMap((r) => r()),
  errors: () => [...errorCounts.values()].map((e) => ({ ...e })),
};
