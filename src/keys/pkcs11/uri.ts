/**
 * RFC 7512 PKCS#11 URIs: `pkcs11:token=node-trust;object=release-2026;type=public?pin-source=file:/etc/signet/pin`.
 * Strict: unknown or repeated attributes and bad percent-encoding are errors. PINs never appear in
 * `redacted` (the form used in logs, Status and error messages): redactKeyLocation() is the one redaction.
 */
import { readFileSync } from 'node:fs';
import { SignetError } from '../../errors.js';

export type ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  slotId?: number;
  object?: string;
  /** CKA_ID bytes. */
  id?: Buffer;
  type?: ObjectType;
  modulePath?: string;
  pinValue?: string;
  pinSource?: string;
  /** The URI without pin-value / pin-source, safe to print. */
  redacted: string;
}

const PATH_ATTRS = [
  'token',
  'manufacturer',
  'serial',
  'model',
  'library-manufacturer',
  'library-description',
  'library-version',
  'slot-id',
  'slot-description',
  'slot-manufacturer',
  'object',
  'id',
  'type',
];
const QUERY_ATTRS = ['module-path', 'module-name', 'pin-value', 'pin-source'];
const TYPES: ObjectType[] = ['public', 'private', 'cert', 'secret-key', 'data'];

function pctDecode(value: string, attr: string, input: string): Buffer {
  if (/%(?![0-9a-fA-F]{2})/.test(value)) throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: bad percent-encoding in "${attr}"`);
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** The attribute name of one `name=value` part, percent-decoded and lower-cased (`PIN%2Dvalue` is `pin-value`). */
function attributeName(part: string): string {
  const eq = part.indexOf('=');
  const name = eq >= 0 ? part.slice(0, eq) : part;
  try {
    return decodeURIComponent(name).trim().toLowerCase();
  } catch {
    return name.trim().toLowerCase();
  }
}

const isPinPart = (part: string): boolean => attributeName(part).startsWith('pin-');
const NON_PIN_QUERY = new Set(QUERY_ATTRS.filter((a) => !a.startsWith('pin-')));

/**
 * THE redaction of key locations: a PKCS#11 URI (or anything that looks like one, valid or not) without
 * its PIN attributes, safe for every output — logs, Status, audit lines, explanations, error messages.
 * `pin-value` and `pin-source` go in any case and any percent-encoding of their names, with their whole
 * value: a query attribute ends only at `&` (so `pin-value=12;34` goes entirely), and the parts after a
 * PIN that are not attributes (an unencoded `&` inside the PIN) go with it. A PIN attribute in the path,
 * where none belongs, takes everything after it. Anything else is returned as it is, except that a
 * stray `pin-value`/`pin-source` anywhere cuts the text there.
 */
export function redactKeyLocation(location: string): string {
  if (!/^pkcs11:/i.test(location)) {
    const stray = /pin(?:-|%2d)(?:value|source)/i.exec(location);
    return stray === null ? location : `${location.slice(0, stray.index)}…`;
  }
  const body = location.slice('pkcs11:'.length);
  const q = body.indexOf('?');
  const path: string[] = [];
  for (const part of (q >= 0 ? body.slice(0, q) : body).split(';')) {
    if (isPinPart(part)) return `${location.slice(0, 'pkcs11:'.length)}${path.join(';')}`;
    path.push(part);
  }
  const query: string[] = [];
  if (q >= 0) {
    let afterPin = false;
    for (const part of body.slice(q + 1).split('&')) {
      if (isPinPart(part)) afterPin = true;
      else if (!afterPin || NON_PIN_QUERY.has(attributeName(part))) {
        afterPin = false;
        query.push(part);
      }
    }
  }
  return `${location.slice(0, 'pkcs11:'.length)}${path.join(';')}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

/** A fragment of `input` for an error message, only if the redacted URI shows it anyway. */
function shown(fragment: string, input: string): string {
  return fragment !== '' && redactKeyLocation(input).includes(fragment) ? fragment : '…';
}

export function parsePkcs11Uri(input: string): Pkcs11Uri {
  if (typeof input !== 'string' || !input.startsWith('pkcs11:')) throw new SignetError('KEY_INVALID', `not a PKCS#11 URI (must start with "pkcs11:")`);
  const body = input.slice('pkcs11:'.length);
  const q = body.indexOf('?');
  const path = q >= 0 ? body.slice(0, q) : body;
  const query = q >= 0 ? body.slice(q + 1) : '';
  const out: Partial<Pkcs11Uri> & Record<string, unknown> = {};
  const seen = new Set<string>();
  const take = (part: string, allowed: string[], kind: string) => {
    if (part === '') return;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: "${shown(part, input)}" is not attribute=value`);
    const name = part.slice(0, eq);
    const raw = part.slice(eq + 1);
    if (!allowed.includes(name))
      throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: unknown ${kind} attribute "${shown(name, input)}"`);
    if (seen.has(name)) throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: attribute "${name}" given twice`);
    seen.add(name);
    const bytes = pctDecode(raw, name, input);
    const text = bytes.toString('utf8');
    switch (name) {
      case 'token':
      case 'manufacturer':
      case 'serial':
      case 'model':
      case 'object':
        out[name] = text;
        break;
      case 'slot-id':
        if (!/^\d+$/.test(text)) throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: slot-id must be a number`);
        out.slotId = Number(text);
        break;
      case 'id':
        out.id = bytes;
        break;
      case 'type':
        if (!TYPES.includes(text as ObjectType))
          throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: type must be one of ${TYPES.join(', ')}`);
        out.type = text as ObjectType;
        break;
      case 'module-path':
        out.modulePath = text;
        break;
      case 'pin-value':
        out.pinValue = text;
        break;
      case 'pin-source':
        if (!text.startsWith('file:') && !text.startsWith('/'))
          throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: pin-source must be a file: path`);
        out.pinSource = text.startsWith('file:') ? text.slice('file:'.length).replace(/^\/\/(?=\/)/, '') : text;
        break;
      default:
        break; // library-*, slot-description…: accepted, not used for matching
    }
  };
  for (const part of path.split(';')) take(part, PATH_ATTRS, 'path');
  for (const part of query.split('&')) take(part, QUERY_ATTRS, 'query');
  if (out.pinValue !== undefined && out.pinSource !== undefined)
    throw new SignetError('KEY_INVALID', `PKCS#11 URI ${redactKeyLocation(input)}: give pin-value or pin-source, not both`);
  return { ...(out as Omit<Pkcs11Uri, 'redacted'>), redacted: redactKeyLocation(input) };
}

/** The PIN the URI names (pin-value, or the first line of the pin-source file), else the fallback. */
export function resolvePin(uri: Pkcs11Uri, fallback?: string): string | undefined {
  if (uri.pinValue !== undefined) return uri.pinValue;
  if (uri.pinSource !== undefined) {
    try {
      return readFileSync(uri.pinSource, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SignetError(
        'KEY_UNAVAILABLE',
        `PKCS#11 URI ${uri.redacted}: cannot read pin-source ${uri.pinSource}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  return fallback;
}

/** Percent-encode a value for a URI we print (`signet keys list`). */
export function pctEncode(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += typeof value !== 'string' || !/[A-Za-z0-9._~-]/.test(c) ? `%${b.toString(16).padStart(2, '0')}` : c;
  }
  return out;
}
