/**
 * The request body of the verifier's HTTP socket: `application/x-www-form-urlencoded`, as curl's
 * `--data-urlencode` writes it, carrying containerd's bindir contract unchanged — the three flags the
 * verifier was given and the descriptor it read on stdin. Parsed strictly: every field known, each at
 * most once, percent escapes well formed; then the contract's own checks (src/verifier/contract.ts), so
 * the shell verifier and the Node one accept and refuse exactly the same input.
 */
import type { VerifyRequest } from '../engine/decision.js';
import { parseStdinDescriptor, parseVerifierArgs, UsageError } from '../verifier/contract.js';

/** The descriptor as read from stdin, at most (the Node verifier's limit). */
export const MAX_DESCRIPTOR_BYTES = 1 << 20;
/** The whole body: a 1 MiB descriptor percent-encoded (3×), plus the flags. */
export const MAX_FORM_BYTES = 3 * MAX_DESCRIPTOR_BYTES + 64 * 1024;
/** The longest wait the verifier may ask for (its SIGNET_VERIFIER_TIMEOUT). */
const MAX_TIMEOUT_MS = 600_000;

const FIELDS = ['name', 'digest', 'stdin-media-type', 'descriptor', 'timeout-ms'] as const;
type Field = (typeof FIELDS)[number];

/** A refusal of the request itself; `status` is the HTTP status (400, or 413 for size). */
export class FormError extends UsageError {
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
  }
}

export interface VerifyForm {
  request: VerifyRequest;
  /** How long the verifier waits for the answer, when it said (its deadline, counted from its start). */
  timeoutMs?: number;
}

/** `%41` → byte 0x41, `+` → space; a `%` not followed by two hex digits is an error. */
function percentDecode(untrusted: string, field: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < untrusted.length; i++) {
    const c = untrusted.charCodeAt(i);
    if (c === 0x25) {
      const hex = untrusted.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new FormError(`field "${field}" has a malformed percent escape`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b) bytes.push(0x20);
    else if (c < 0x21 || c > 0x7e) throw new FormError(`field "${field}" is not percent-encoded`);
    else bytes.push(c);
  }
  return Buffer.from(bytes);
}

/** The form's body (ASCII, as curl sends it) → the request, or a FormError/UsageError saying what is wrong. */
export function parseVerifyForm(untrustedBody: Buffer): VerifyForm {
  if (untrustedBody.length > MAX_FORM_BYTES) throw new FormError('stdin descriptor is larger than 1 MiB', 413);
  const fields = new Map<Field, Buffer>();
  for (const pair of untrustedBody.toString('latin1').split('&')) {
    // curl leaves an empty pair where a value read from an empty stdin would be.
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const field = FIELDS.find((f) => f === key);
    // The key is echoed only when it is a short plain word; anything else is described, not quoted.
    if (field === undefined) throw new FormError(/^[a-z-]{1,32}$/.test(key) ? `unknown field "${key}"` : 'a field with an unknown name');
    if (fields.has(field)) throw new FormError(`field "${field}" given twice`);
    fields.set(field, percentDecode(eq < 0 ? '' : pair.slice(eq + 1), field));
  }
  const text = (f: Field): string | undefined => fields.get(f)?.toString('utf8');
  // The flags exactly as the verifier got them, through the contract's own parser.
  const argv: string[] = [];
  for (const [field, flag] of [
    ['name', '-name'],
    ['digest', '-digest'],
    ['stdin-media-type', '-stdin-media-type'],
  ] as const) {
    const v = text(field);
    if (v !== undefined) argv.push(flag, v);
  }
  const args = parseVerifierArgs(argv);
  const descriptorBytes = fields.get('descriptor') ?? Buffer.alloc(0);
  if (descriptorBytes.length > MAX_DESCRIPTOR_BYTES) throw new FormError('stdin descriptor is larger than 1 MiB', 413);
  const descriptor = parseStdinDescriptor(descriptorBytes.toString('utf8'), args.digest);
  let timeoutMs: number | undefined;
  const t = text('timeout-ms');
  if (t !== undefined) {
    if (!/^[0-9]{1,9}$/.test(t) || Number(t) < 1 || Number(t) > MAX_TIMEOUT_MS) throw new FormError(`field "timeout-ms" must be 1 to ${MAX_TIMEOUT_MS}`);
    timeoutMs = Number(t);
  }
  return {
    request: { name: args.name, descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size } },
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}
