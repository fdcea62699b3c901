/** Validation of one policy file against the published JSON Schema (schema/policy.schema.json). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

export const SCHEMA_PATH = fileURLToPath(new URL('../../../schema/policy.schema.json', import.meta.url));

let validator: ValidateFunction | undefined;

export function policySchemaText(): string {
  return readFileSync(SCHEMA_PATH, 'utf8');
}

function compiled(): ValidateFunction {
  if (validator === undefined) {
    // Formats (date-time) are checked by the loader with better messages.
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, validateFormats: false });
    validator = ajv.compile(JSON.parse(policySchemaText()) as object);
  }
  return validator;
}

export interface SchemaProblem {
  pointer: string;
  /** Set when the problem is a key itself (unknown or missing property). */
  key?: string;
  message: string;
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
        push({ pointer: where, key: extra, message: `unknown field "${extra}"${where ? ` in ${where}` : ''}; check the spelling against schema/policy.schema.json` });
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        if (missing === 'signatures') push({ pointer: where, message: `action "verify" needs "signatures" (keys and threshold)` });
        else push({ pointer: where, message: `missing "${missing}"` });
        break;
      }
      case 'not':
        if (e.schemaPath.includes('/else/')) push({ pointer: where, key: 'signatures', message: '"signatures" only applies to action "verify"; remove it or set action: verify' });
        break;
      case 'oneOf':
        if (keyOneOf.has(where)) push({ pointer: where, message: 'a key needs exactly one of "file" or "pkcs11"' });
        else push({ pointer: where, message: 'must be one signature group { keys, threshold, identity } or a list of them' });
        break;
      case 'if':
        break;
      case 'enum':
        push({ pointer: where, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` });
        break;
      case 'const':
        push({ pointer: where, message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` });
        break;
      case 'pattern':
        push({ pointer: where, message: where.endsWith('expiryWarning') ? 'must be a duration such as 30m, 24h or 7d' : `has an invalid value (${e.message ?? 'pattern'})` });
        break;
      default:
        push({ pointer: where, message: `${where || 'the file'} ${e.message ?? 'is invalid'}` });
    }
  }
  return out;
}
