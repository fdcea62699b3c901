/**
 * Property-based fuzzing of parsers of untrusted bytes (fast-check), shared pieces: a fixed seed (so a
 * failure replays; SIGNET_FUZZ_SEED and SIGNET_FUZZ_RUNS override), inputs built by mutating valid
 * samples as well as from scratch, and the one rule every parser must keep: it returns a result or throws
 * one of its typed errors, quickly — never another exception, never a hang.
 */
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env['SIGNET_FUZZ_SEED'] ?? 20_261_127);

/** Runs per property: `base`, scaled by SIGNET_FUZZ_RUNS (a factor, e.g. 10 for a long night run). */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * Number(process.env['SIGNET_FUZZ_RUNS'] ?? 1)));
}

export function params(base: number): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns: runs(base), endOnFailure: true };
}

/** Longest a single parse may take before it counts as a hang. */
export const MAX_CALL_MS = 2000;

/**
 * Call `fn`: a result, or an error of one of the `allowed` classes, within MAX_CALL_MS. Anything else
 * (TypeError, RangeError: a crash) fails the property with the input named.
 */
export function typedOutcome<T>(
  fn: () => T,
  allowed: Array<abstract new (...args: never[]) => Error>,
  input?: unknown,
): { ok: true; value: T } | { ok: false; error: Error } {
  const started = Date.now();
  let outcome: { ok: true; value: T } | { ok: false; error: Error };
  try {
    outcome = { ok: true, value: fn() };
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) {
      throw new Error(`untyped ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)} for input ${preview(input)}`);
    }
    outcome = { ok: false, error: err as Error };
  }
  const ms = Date.now() - started;
  if (ms > MAX_CALL_MS) throw new Error(`took ${ms} ms (a hang) for input ${preview(input)}`);
  return outcome;
}

export async function typedOutcomeAsync<T>(
  fn: () => Promise<T>,
  allowed: Array<abstract new (...args: never[]) => Error>,
  input?: unknown,
): Promise<{ ok: true; value: T } | { ok: false; error: Error }> {
  const started = Date.now();
  let outcome: { ok: true; value: T } | { ok: false; error: Error };
  try {
    outcome = { ok: true, value: await fn() };
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) {
      throw new Error(`untyped ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)} for input ${preview(input)}`);
    }
    outcome = { ok: false, error: err as Error };
  }
  const ms = Date.now() - started;
  if (ms > MAX_CALL_MS) throw new Error(`took ${ms} ms (a hang) for input ${preview(input)}`);
  return outcome;
}

function preview(input: unknown): string {
  const text = Buffer.isBuffer(input)
    ? `<${input.length} bytes> ${JSON.stringify(input.subarray(0, 200).toString('latin1'))}`
    : (JSON.stringify(input) ?? String(input));
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

/** One edit to a byte string: flip, set, insert, delete, duplicate a run, truncate. */
export function mutateBytes(sample: Buffer): fc.Arbitrary<Buffer> {
  const n = Math.max(1, sample.length);
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(n - 1), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(n - 1), byte: fc.nat(255) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(n), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(n - 1), length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(n - 1), length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(n - 1) }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let b = Buffer.from(sample);
    for (const e of edits) {
      const at = Math.min(e.at, Math.max(0, b.length - 1));
      switch (e.kind) {
        case 'flip':
          if (b.length > 0) b[at] = b[at]! ^ (1 << e.bit);
          break;
        case 'set':
          if (b.length > 0) b[at] = e.byte;
          break;
        case 'insert':
          b = Buffer.concat([b.subarray(0, Math.min(e.at, b.length)), Buffer.from(e.bytes), b.subarray(Math.min(e.at, b.length))]);
          break;
        case 'delete':
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.length)]);
          break;
        case 'duplicate':
          b = Buffer.concat([b.subarray(0, at + e.length), b.subarray(at)]);
          break;
        case 'truncate':
          b = b.subarray(0, at);
          break;
      }
    }
    return b;
  });
}

/**
 * A JSON document with one subtree replaced by something else (a random JSON value, a wrong type, a
 * huge string, a deep nest), or a key added or removed: valid shape, hostile details.
 */
export function mutateJson(sample: unknown): fc.Arbitrary<unknown> {
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, path: Array<string | number>): void => {
    paths.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(sample, []);
  const replacement = fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        null,
        true,
        0,
        -1,
        1e308,
        '',
        [],
        {},
        '__proto__',
        'constructor',
        '\u0000',
        '\u202e',
        'sha256:',
        `sha256:${'0'.repeat(64)}`,
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 2000 }).map((d) => JSON.parse(`${'['.repeat(d)}${']'.repeat(d)}`) as unknown) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 100_000 }).map((n) => 'x'.repeat(n)) },
  );
  const op = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), path: fc.constantFrom(...paths), value: replacement }),
    fc.record({
      kind: fc.constant('add' as const),
      path: fc.constantFrom(...paths),
      key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString')),
      value: replacement,
    }),
    fc.record({ kind: fc.constant('remove' as const), path: fc.constantFrom(...paths.filter((p) => p.length > 0).concat(paths.length > 1 ? [] : [[]])) }),
  );
  return fc.array(op, { minLength: 1, maxLength: 3 }).map((ops) => {
    let doc = structuredClone(sample);
    for (const o of ops) {
      if (o.path.length === 0) {
        if (o.kind === 'replace') doc = o.value;
        else if (o.kind === 'add' && doc !== null && typeof doc === 'object' && !Array.isArray(doc))
          Object.defineProperty(doc, o.key, { value: o.value, enumerable: true, writable: true, configurable: true });
        continue;
      }
      const parent = get(doc, o.path.slice(0, -1));
      const last = o.path.at(-1)!;
      if (parent === null || typeof parent !== 'object') continue;
      const target = parent as Record<string | number, unknown>;
      if (o.kind === 'replace') target[last] = o.value;
      else if (o.kind === 'remove') {
        if (Array.isArray(target)) target.splice(Number(last), 1);
        else delete target[last];
      } else {
        const at = get(doc, o.path);
        if (at !== null && typeof at === 'object' && !Array.isArray(at))
          Object.defineProperty(at, o.key, { value: o.value, enumerable: true, writable: true, configurable: true });
        else if (Array.isArray(at)) at.push(o.value);
      }
    }
    return doc;
  });
}

function get(doc: unknown, path: Array<string | number>): unknown {
  let v = doc;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** Text-level damage to a JSON document that JSON.stringify cannot produce: duplicate keys, BOM, NUL, lone surrogates, trailing garbage, comments. */
export function jsonTextTricks(text: string): fc.Arbitrary<string> {
  const firstKey = /"([^"\\]+)"\s*:/.exec(text);
  const tricks: string[] = [
    `\ufeff${text}`,
    `${text}\u0000`,
    `${text} {}`,
    `${text.slice(0, -1)},}`,
    `/*c*/${text}`,
    text.replace(/"/, '"\ud800'),
    ...(firstKey ? [text.replace('{', `{"${firstKey[1]}":null,`), text.replace('{', `{"${firstKey[1]}":${JSON.stringify(text.slice(0, 50))},`)] : []),
  ];
  return fc.constantFrom(...tricks);
}

/** Random bytes of every kind: short, long, ASCII, JSON-ish, binary. */
export const anyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 512 }).map((s) => Buffer.from(s)),
  fc.json({ maxDepth: 4 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ minLength: 4096, maxLength: 70_000 }).map((a) => Buffer.from(a)),
);
