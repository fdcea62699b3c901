/**
 * The keys the current policy names, loaded through their providers.
 * A key that fails to load stays in the ring as an error: signatures that need it are refused with
 * that error as the reason (fail closed), and the next refresh tries again, so the daemon recovers
 * without a restart once the file, key or token is back.
 */
import { describeError, SignetError } from '../errors.js';
import { KEY_KINDS, keyStoreFor } from './index.js';
import type { KeyProvider, KeyScheme, KeySpec, KeyStoreOptions } from './provider.js';
import { loadTlogRequirement } from './tlog.js';
import type { KeyStatus, TrustedKey } from './types.js';
import { keyLocation } from './location.js';

interface Entry {
  spec: KeySpec;
  key?: TrustedKey;
  error?: SignetError;
  lastRefresh?: Date;
}

export type KeyLookup = { key: TrustedKey; error?: undefined } | { key?: undefined; error: SignetError };

/**
 * The keys of one policy generation, as a decision sees them: a name always resolves to the key the
 * policy of that generation defined, even while a reload installs another policy that reuses the name.
 */
export interface KeySet {
  get(name: string): KeyLookup;
  /** Mark a key unusable after a failure seen during verification (token removed…); refresh restores it. */
  markFailed(name: string, error: SignetError): void;
}

export interface KeyRingLogger {
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
}

export class KeyRing implements KeySet {
  private entries = new Map<string, Entry>();
  private readonly providers: Map<KeyScheme, KeyProvider>;

  /**
   * `providers` replace the stores' own (tests, a daemon-configured PKCS#11 provider); every other
   * store of the list (keys/index.ts) gets its provider, with `options`, when a key first needs it.
   */
  constructor(
    providers: KeyProvider[] = [],
    private readonly log?: KeyRingLogger,
    private readonly options: KeyStoreOptions = {},
  ) {
    this.providers = new Map(providers.map((p) => [p.scheme, p]));
  }

  /**
   * Replace the set of keys with `specs` and load them all; never throws for a single bad key.
   * Returns the new generation's keys: decisions hold on to it, so a later load that maps a name to
   * another key never changes what a decision already under way verifies with.
   */
  async load(specs: Record<string, KeySpec>): Promise<KeySet> {
    const next = new Map<string, Entry>();
    for (const [name, spec] of Object.entries(specs)) next.set(name, { spec });
    await Promise.all([...next.entries()].map(([name, entry]) => this.loadEntry(name, entry)));
    this.entries = next;
    return { get: (name) => lookup(next, name), markFailed: (name, error) => this.markFailedIn(next, name, error) };
  }

  /** Look every key up again (policy reload, refresh interval). */
  async refresh(): Promise<void> {
    await Promise.all([...this.entries.entries()].map(([name, entry]) => this.loadEntry(name, entry)));
  }

  /** The current generation's key `name`. */
  get(name: string): KeyLookup {
    return lookup(this.entries, name);
  }

  markFailed(name: string, error: SignetError): void {
    this.markFailedIn(this.entries, name, error);
  }

  private markFailedIn(entries: Map<string, Entry>, name: string, error: SignetError): void {
    const entry = entries.get(name);
    if (entry === undefined) return;
    entry.error = error;
    this.log?.warn('key failed during verification', { key: name, error: describeError(error) });
  }

  status(): KeyStatus[] {
    return [...this.entries.entries()].map(([name, e]) => ({
      name,
      location: e.key?.location ?? locationOf(e.spec),
      ...(e.key ? { algorithm: e.key.algorithm, fingerprint: e.key.fingerprint } : {}),
      ...(e.lastRefresh ? { lastRefresh: e.lastRefresh.toISOString() } : {}),
      ...(e.error ? { lastError: describeError(e.error) } : {}),
    }));
  }

  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.close()));
  }

  private async loadEntry(name: string, entry: Entry): Promise<void> {
    try {
      const store = keyStoreFor(entry.spec);
      if (store === undefined) throw new SignetError('KEY_INVALID', `key "${name}" names no key store (one of ${KEY_KINDS.join(', ')})`);
      let provider = this.providers.get(store.kind);
      if (provider === undefined) {
        provider = store.provider(this.options);
        this.providers.set(store.kind, provider);
      }
      const loaded = await provider.load(name, entry.spec);
      // Evidence the policy requires of this key's signatures, whatever its store.
      const tlog = await loadTlogRequirement(name, entry.spec);
      const key = tlog === undefined ? loaded : { ...loaded, tlog };
      const changed = entry.key !== undefined && entry.key.fingerprint !== key.fingerprint;
      if (entry.error !== undefined) this.log?.info('key available again', { key: name });
      if (changed) this.log?.warn('key changed on refresh', { key: name, fingerprint: key.fingerprint });
      entry.key = key;
      delete entry.error;
    } catch (err) {
      const error = err instanceof SignetError ? err : new SignetError('KEY_UNAVAILABLE', `key "${name}": ${describeError(err)}`, { cause: err });
      if (entry.error?.message !== error.message) this.log?.warn('key unavailable', { key: name, error: describeError(error) });
      delete entry.key;
      entry.error = error;
    }
    entry.lastRefresh = new Date();
  }
}

function lookup(entries: Map<string, Entry>, name: string): KeyLookup {
  const entry = entries.get(name);
  if (entry === undefined) return { error: new SignetError('KEY_NOT_FOUND', `key "${name}" is not defined in the policy`) };
  if (entry.key !== undefined && entry.error === undefined) return { key: entry.key };
  return { error: entry.error ?? new SignetError('KEY_UNAVAILABLE', `key "${name}" is not loaded`) };
}

/** A printable location for a spec: the one redaction (keys/location.ts), PINs never included. */
function locationOf(spec: KeySpec): string {
  return keyLocation(spec);
}
