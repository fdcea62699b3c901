/** Validation of one policy file against the published JSON Schema (schema/policy.schema.json). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { printable } from '../util/printable.js';

export const SCHEMA_PATH = fileURLToPath(new URL('../../../schema/policy.schema.json', import.meta.url));

let validator: ValidateFunction | undefined;
let keyKinds: string[] = [];

export function policySchemaText(): string {
  return readFileSync(SCHEMA_PATH, 'utf8');
}

function compiled(): ValidateFunction {
  if (validator === undefined) {
    // Formats (date-time) are checked by the loader with better messages.
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, validateFormats: false });
    const schema = JSON.parse(policySchemaText()) as { definitions?: { key?: { oneOf?: Array<{ required?: string[] }> } } };
    // The key stores the schema's one-of-these names (held to keys/index.ts KEY_STORES by a test).
    keyKinds = (schema.definitions?.key?.oneOf ?? []).flatMap((o) => o.required ?? []);
    validator = ajv.compile(schema);
  }
  return validator;
}

export interface SchemaProblem {
  pointer: string;
  /** Set when the problem is a key itself (unknown or missing property). */
  key?: string;
  /** Set when the problem is an unknown field (a foreign file has one per line: the loader bounds them). */
  unknownField?: true;
  message: string;
}

/**
 * A key of the file, as a message shows it: whole when it looks like a field or scope name, else (a
 * line of /etc/passwd read as YAML…) only a short escaped prefix and its length, so that messages
 * name the problem without echoing what a foreign file holds.
 */
export function fieldName(key: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,127}$/.test(key)) return `"${key}"`;
  return `"${printable(key, 13)}" (${key.length} characters)`;
}

/** A JSON pointer into the file, as a message shows it: each segment escaped and bounded. */
function pointerText(pointer: string): string {
  return pointer
    .split('/')
    .map((seg) => printable(seg, 65))
    .join('/');
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  boolean: 'true or false',
  number: 'a number',
};

/** The last segment of a JSON pointer: the field an operator sees. */
function field(pointer: string): string {
  const seg = pointer
    .slice(pointer.lastIndexOf('/') + 1)
    .replace(/~1/g, '/')
    .replace(/~0/g, '~');
  return printable(/^\d+$/.test(seg) ? `${pointer.slice(0, pointer.lastIndexOf('/')).split('/').pop() ?? ''}[${seg}]` : seg, 65);
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

/** `"a", "b" or "c"`. */
function quotedList(names: readonly string[]): string {
  const q = names.map((n) => `"${n}"`);
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** Schema problems in one parsed file, de-duplicated and phrased for operators. */
export function validatePolicyFile(value: unknown): SchemaProblem[] {
  const validate = compiled();
  if (validate(value)) return [];
  const errors = (validate.errors ?? []) as ErrorObject[];
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  const push = (p: SchemaProblem) => {
    const k = `${p.pointer}|${p.key ?? ''}|${p.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(p);
    }
  };
  // Errors under a oneOf/if branch are noise when a clearer error exists at the same place.
  const keyOneOf = new Set(errors.filter((e) => e.keyword === 'oneOf' && /^\/keys\/[^/]+$/.test(e.instancePath)).map((e) => e.instancePath));
  for (const e of errors) {
    const where = e.instancePath;
    if (keyOneOf.has(where) && e.keyword !== 'oneOf' && e.keyword !== 'additionalProperties') continue;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        push({
          pointer: where,
          key: extra,
          unknownField: true,
          message: `unknown field ${fieldName(extra)}${where ? ` in ${pointerText(where)}` : ''}; check the spelling against schema/policy.schema.json`,
        });
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        if (missing === 'signatures') push({ pointer: where, message: `action "verify" needs "signatures" (keys and threshold)` });
        else if (missing === 'apiVersion') push({ pointer: where, message: 'missing "apiVersion"; every policy file starts with apiVersion: signet/v1' });
        else if (missing === 'action') push({ pointer: where, message: 'missing "action"; set it to verify, accept or reject' });
        else push({ pointer: where, message: `missing "${missing}"` });
        break;
      }
      case 'not':
        if (e.schemaPath.includes('/else/'))
          push({ pointer: where, key: 'signatures', message: '"signatures" only applies to action "verify"; remove it or set action: verify' });
        break;
      case 'oneOf':
        if (keyOneOf.has(where)) push({ pointer: where, message: `a key needs exactly one of ${quotedList(keyKinds)}` });
        else push({ pointer: where, message: `"${field(where)}" has an invalid form` });
        break;
      case 'if':
        break;
      case 'type': {
        const t = (e.params as { type: string | string[] }).type;
        const want = (Array.isArray(t) ? t : [t]).map((x) => TYPE_NAMES[x] ?? x).join(' or ');
        push({
          pointer: where,
          message: where ? `"${field(where)}" must be ${want}` : `the file must be a mapping (apiVersion, keys, default, scopes), not ${describe(value)}`,
        });
        break;
      }
      case 'minimum':
        push({ pointer: where, message: `"${field(where)}" must be at least ${(e.params as { limit: number }).limit}` });
        break;
      case 'minItems':
        push({ pointer: where, message: `"${field(where)}" must list at least ${(e.params as { limit: number }).limit} item(s)` });
        break;
      case 'minLength':
        push({ pointer: where, message: `"${field(where)}" must not be empty` });
        break;
      case 'propertyNames':
        break;
      case 'enum':
        push({
          pointer: where,
          message: `"${field(where)}" must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
        });
        break;
      case 'dependencies': {
        const { property, missingProperty } = e.params as { property: string; missingProperty: string };
        if (missingProperty === 'tlog') push({ pointer: where, key: property, message: `"${property}" applies only with "tlog: required"` });
        else push({ pointer: where, key: property, message: `"${property}" applies to ${missingProperty} keys only; add "${missingProperty}" or remove it` });
        break;
      }
      case 'anyOf':
        if (/^\/keys\/[^/]+$/.test(where)) push({ pointer: where, message: '"tlog: required" needs the log\'s key: "rekorKey" or "trustedRoot"' });
        else push({ pointer: where, message: `"${field(where)}" has an invalid form` });
        break;
      case 'const':
        push({ pointer: where, message: `"${field(where)}" must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` });
        break;
      case 'pattern':
        if (e.propertyName !== undefined)
          push({
            pointer: where,
            key: e.propertyName,
            message: `key name ${fieldName(e.propertyName)} must be letters, digits, ".", "_" or "-" (at most 128, starting with a letter or digit)`,
          });
        else if (where.endsWith('expiryWarning')) push({ pointer: where, message: '"expiryWarning" must be a duration such as 30m, 24h or 7d' });
        else if (where.endsWith('/pkcs11')) push({ pointer: where, message: '"pkcs11" must be an RFC 7512 URI starting with "pkcs11:"' });
        else if (/\/digests\/\d+$/.test(where)) push({ pointer: where, message: 'must be a digest such as sha256:<64 hex digits>' });
        else push({ pointer: where, message: `"${field(where)}" has an invalid value (${e.message ?? 'pattern'})` });
        break;
      default:
        push({ pointer: where, message: `${where ? pointerText(where) : 'the file'} ${e.message ?? 'is invalid'}` });
    }
  }
  return out;
}
