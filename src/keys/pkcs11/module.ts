/**
 * A loaded PKCS#11 module (one per path per process), initialised with CKF_OS_LOCKING_OK (SoftHSM
 * and others corrupt state under concurrent use without it), tokens found by label/serial rather than
 * slot id (slot ids change), a bounded pool of sessions per token (never two operations on one session),
 * and re-initialisation after device errors so that a returning token is seen without a restart.
 */
import pkcs11js from './binding.js';
import { SignetError } from '../../errors.js';
import type { Pkcs11Uri } from './uri.js';
import { addPoolReporter, countPkcs11Error, type Pkcs11PoolGauge } from './pool-stats.js';

export const { PKCS11 } = pkcs11js;
export type Handle = Buffer;

const MAX_SESSIONS_PER_TOKEN = 8;

/** Cryptoki return values that mean the module, token or session went away: re-initialise and look up again. */
const DEVICE_GONE = new Set<number>([
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_SLOT_ID_INVALID,
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
]);

export function pkcs11Code(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

/**
 * Count a failed Cryptoki call for the metrics (./pool-stats.ts): the function pkcs11js names, else
 * `operation`; the CKR name pkcs11js gives, else the value in hex. Other errors (no such object) are not
 * Cryptoki failures and are not counted.
 */
export function countCryptokiError(err: unknown, operation: string): void {
  const code = pkcs11Code(err);
  if (code === undefined) return;
  const named = (err as { method?: unknown; message?: unknown }).method;
  const message = (err as Error).message;
  countPkcs11Error(
    typeof named === 'string' && /^C_\w+$/.test(named) ? named : operation,
    /^CKR_\w+$/.test(message) ? message : `0x${code.toString(16).padStart(8, '0')}`,
  );
}

export function isDeviceGone(err: unknown): boolean {
  const code = pkcs11Code(err);
  return code !== undefined && DEVICE_GONE.has(code);
}

/** A SignetError for a failed Cryptoki call, naming the key and never a PIN. */
export function pkcs11Error(err: unknown, what: string): SignetError {
  if (err instanceof SignetError) return err;
  const code = pkcs11Code(err);
  if (code === pkcs11js.CKR_PIN_INCORRECT || code === pkcs11js.CKR_PIN_INVALID || code === pkcs11js.CKR_PIN_LEN_RANGE)
    return new SignetError('PIN_INCORRECT', `${what}: the PIN was refused by the token`);
  if (code === pkcs11js.CKR_PIN_LOCKED) return new SignetError('PIN_INCORRECT', `${what}: the PIN is locked on the token`);
  const message = (err as Error)?.message?.split(':')[0] ?? String(err);
  return new SignetError(isDeviceGone(err) ? 'KEY_UNAVAILABLE' : 'PKCS11_ERROR', `${what}: ${message}`, { cause: err });
}

/** No slot holds the token a URI names (as opposed to a missing object on a present token). */
export class TokenNotFoundError extends SignetError {
  constructor(message: string) {
    super('KEY_NOT_FOUND', message);
  }
}

interface TokenState {
  /** How metrics name the token: its label, serial or slot as the URI gives it. */
  label: string;
  slot: Handle;
  idle: Handle[];
  open: number;
  /** Callers waiting for a session; failed, never left hanging, when the module is reset. */
  waiters: Array<{ resolve: (s: Handle) => void; reject: (e: Error) => void }>;
  loggedIn: boolean;
}

export class Pkcs11Module {
  private lib: InstanceType<typeof PKCS11> | undefined;
  private tokens = new Map<string, TokenState>();
  /** PINs the token refused, per token: never retried automatically (real HSMs lock the PIN). */
  private readonly refusedPins = new Map<string, string>();
  private generation = 0;

  constructor(readonly path: string) {
    addPoolReporter(() => this.pools());
  }

  /** Each token's pool now, for the metrics. */
  pools(): Pkcs11PoolGauge[] {
    return [...this.tokens.values()].map((t) => ({
      module: this.path,
      token: t.label,
      open: t.open,
      inUse: t.open - t.idle.length,
      waiters: t.waiters.length,
    }));
  }

  get api(): InstanceType<typeof PKCS11> {
    if (this.lib === undefined) {
      const lib = new PKCS11();
      try {
        lib.load(this.path);
      } catch (err) {
        throw new SignetError('KEY_UNAVAILABLE', `cannot load PKCS#11 module ${this.path}: ${(err as Error).message}`);
      }
      try {
        lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      } catch (err) {
        if (pkcs11Code(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          try {
            lib.close();
          } catch {
            /* ignore */
          }
          throw pkcs11Error(err, `initialising PKCS#11 module ${this.path}`);
        }
      }
      this.lib = lib;
      this.generation++;
    }
    return this.lib;
  }

  /** Drop every session and finalise; the next use initialises again (tokens re-read). */
  reset(): void {
    const lib = this.lib;
    this.lib = undefined;
    for (const state of this.tokens.values()) {
      for (const w of state.waiters.splice(0)) w.reject(new SignetError('KEY_UNAVAILABLE', `PKCS#11 module ${this.path} was re-initialised; try again`));
    }
    this.tokens = new Map();
    if (lib === undefined) return;
    try {
      lib.C_Finalize();
    } catch {
      /* already gone */
    }
    try {
      lib.close();
    } catch {
      /* ignore */
    }
  }

  /** The slot of the one token matching the URI's token attributes. */
  findSlot(uri: Pkcs11Uri): Handle {
    const api = this.api;
    const slots = api.C_GetSlotList(true);
    const matches = slots.filter((slot, i) => {
      if (uri.slotId !== undefined && slotNumber(slot) !== uri.slotId && i !== uri.slotId) return false;
      const info = api.C_GetTokenInfo(slot);
      if (uri.token !== undefined && info.label.trimEnd() !== uri.token) return false;
      if (uri.manufacturer !== undefined && info.manufacturerID.trimEnd() !== uri.manufacturer) return false;
      if (uri.serial !== undefined && info.serialNumber.trimEnd() !== uri.serial) return false;
      if (uri.model !== undefined && info.model.trimEnd() !== uri.model) return false;
      return true;
    });
    if (matches.length === 0) throw new TokenNotFoundError(`no token matches ${uri.redacted} in ${this.path}`);
    if (matches.length > 1) throw new SignetError('KEY_AMBIGUOUS', `${matches.length} tokens match ${uri.redacted}; add token= or serial=`);
    return matches[0]!;
  }

  /**
   * Whether the slot cached for the URI's token no longer holds it (the token was removed, or removed
   * and put back as a new slot). Asks the module afresh; a missing token is stale.
   */
  tokenMoved(uri: Pkcs11Uri): boolean {
    const cached = this.tokens.get(tokenKey(uri));
    if (cached === undefined) return false;
    try {
      return !this.findSlot(uri).equals(cached.slot);
    } catch {
      return true; // no token matches any more, or the module failed: start afresh
    }
  }

  /**
   * Run `fn` with a session of the token the URI names, logged in when `pin` is given.
   * A device error resets the module so that the next call finds the token afresh.
   */
  async withSession<T>(
    uri: Pkcs11Uri,
    pin: string | undefined,
    what: string,
    fn: (api: InstanceType<typeof PKCS11>, session: Handle) => Promise<T> | T,
  ): Promise<T> {
    let state: TokenState;
    let session: Handle;
    const generation = this.generation;
    try {
      state = this.token(uri);
      session = await this.acquire(state);
    } catch (err) {
      countCryptokiError(err, 'C_OpenSession');
      if (isDeviceGone(err)) this.reset();
      throw pkcs11Error(err, what);
    }
    let broken = false;
    let step = 'C_Login';
    try {
      if (pin !== undefined && !state.loggedIn) this.login(uri, state, session, pin, what);
      step = 'operation';
      return await fn(this.api, session);
    } catch (err) {
      countCryptokiError(err, step);
      broken = isDeviceGone(err);
      throw pkcs11Error(err, what);
    } finally {
      if (broken) {
        if (generation === this.generation) this.reset();
      } else if (this.tokens.get(tokenKey(uri)) === state) {
        this.release(state, session);
      }
    }
  }

  private login(uri: Pkcs11Uri, state: TokenState, session: Handle, pin: string, what: string): void {
    const key = tokenKey(uri);
    if (this.refusedPins.get(key) === pin) {
      throw new SignetError('PIN_INCORRECT', `${what}: the token refused this PIN before; not trying it again (fix the PIN source)`);
    }
    try {
      this.api.C_Login(session, pkcs11js.CKU_USER, pin);
    } catch (err) {
      const code = pkcs11Code(err);
      if (code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        state.loggedIn = true;
        return;
      }
      if (code === pkcs11js.CKR_PIN_INCORRECT || code === pkcs11js.CKR_PIN_LOCKED) this.refusedPins.set(key, pin);
      throw err;
    }
    state.loggedIn = true;
  }

  private token(uri: Pkcs11Uri): TokenState {
    const key = tokenKey(uri);
    let state = this.tokens.get(key);
    if (state === undefined) {
      const label = uri.token ?? uri.serial ?? (uri.slotId !== undefined ? `slot ${uri.slotId}` : 'token');
      state = { label, slot: this.findSlot(uri), idle: [], open: 0, waiters: [], loggedIn: false };
      this.tokens.set(key, state);
    }
    return state;
  }

  private async acquire(state: TokenState): Promise<Handle> {
    const idle = state.idle.pop();
    if (idle !== undefined) return idle;
    if (state.open < MAX_SESSIONS_PER_TOKEN) {
      state.open++;
      try {
        return this.api.C_OpenSession(state.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      } catch (err) {
        state.open--;
        throw err;
      }
    }
    return new Promise((resolve, reject) => state.waiters.push({ resolve, reject }));
  }

  private release(state: TokenState, session: Handle): void {
    const waiter = state.waiters.shift();
    if (waiter !== undefined) waiter.resolve(session);
    else state.idle.push(session);
  }

  close(): void {
    this.reset();
  }
}

function tokenKey(uri: Pkcs11Uri): string {
  return JSON.stringify([uri.token, uri.manufacturer, uri.serial, uri.model, uri.slotId]);
}

function slotNumber(slot: Handle): number {
  return slot.length >= 4 ? slot.readUInt32LE(0) : (slot[0] ?? -1);
}

const modules = new Map<string, Pkcs11Module>();

/** One Pkcs11Module per module path per process. */
export function moduleFor(path: string): Pkcs11Module {
  let m = modules.get(path);
  if (m === undefined) {
    m = new Pkcs11Module(path);
    modules.set(path, m);
  }
  return m;
}

export function closeAllModules(): void {
  for (const m of modules.values()) m.close();
  modules.clear();
}

/**
 * Promise form of the callback variants of pkcs11js (they run off the event loop). `method` names the
 * Cryptoki function on an error that does not name it (errors from callbacks carry no stack to read it from).
 */
export function callAsync<T>(method: string, fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((err, value) => {
      if (!err) return resolve(value);
      const e = err as Error & { method?: string };
      if (!e.method) e.method = method;
      reject(e);
    }),
  );
}
