/**
 * pkcs11js, loaded when first used and optional at install time: it compiles a native addon with
 * node-gyp (make, g++, python3), which a host that only uses PEM and sigstore keys should not need.
 * Without it, PKCS#11 constants read as NaN (no error code ever equals them) and opening a module
 * throws KEY_UNAVAILABLE saying what to install.
 */
import { createRequire } from 'node:module';
import { SignetError } from '../../errors.js';

type Binding = typeof import('pkcs11js');

export const PKCS11JS_MISSING =
  'PKCS#11 keys need the optional package pkcs11js, which is not installed on this host (it builds a native addon: install make, g++ and python3, e.g. apt-get install build-essential python3, then reinstall signet, or run npm install pkcs11js in its folder)';

let loaded: Binding | undefined;
let failed = false;
function load(): Binding | undefined {
  if (loaded === undefined && !failed) {
    try {
      loaded = createRequire(import.meta.url)('pkcs11js') as Binding;
    } catch {
      failed = true;
    }
  }
  return loaded;
}

/** `new PKCS11()`: the real one, or KEY_UNAVAILABLE naming what to install. */
class LazyPkcs11 {
  constructor() {
    const lib = load();
    if (lib === undefined) throw new SignetError('KEY_UNAVAILABLE', PKCS11JS_MISSING);
    return new lib.PKCS11();
  }
}

/** `err instanceof Pkcs11Error`: false for everything when pkcs11js is absent. */
class LazyPkcs11Error {
  static [Symbol.hasInstance](value: unknown): boolean {
    const lib = load();
    return lib !== undefined && value instanceof lib.Pkcs11Error;
  }
}

const binding = new Proxy({} as Binding, {
  get(_target, name) {
    if (name === 'PKCS11') return LazyPkcs11;
    if (name === 'Pkcs11Error') return LazyPkcs11Error;
    const lib = load();
    return lib === undefined ? Number.NaN : (lib as unknown as Record<string | symbol, unknown>)[name];
  },
});

export default binding;

/** Whether pkcs11js can be loaded here (for doctor and status). */
export function pkcs11Available(): boolean {
  return load() !== undefined;
}
