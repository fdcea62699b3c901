/**
 * in-toto attestation Statement (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md):
 *
 *     { "_type": "https://in-toto.io/Statement/v1",
 *       "subject": [{ "name": "…", "digest": { "sha256": "<hex>" } }],
 *       "predicateType": "<URI>", "predicate": { … } }
 *
 * signet writes v1. On read it also accepts `_type` "https://in-toto.io/Statement/v0.1", which
 * cosign (`cosign attest`, every version up to 2.x) still writes; the two differ only in the type
 * string and in v1's richer subject (ResourceDescriptor), so one parser serves both.
 *
 * Strict on purpose (the project's rule for signed payloads), stricter than the in-toto spec's
 * "ignore unknown fields": duplicate keys, unknown top-level or subject fields, wrong types, empty
 * subjects and malformed digests are SIGNATURE_MALFORMED. The producers we expect (signet, cosign)
 * write none of those.
 */
import { SignetError } from '../errors.js';
import { isDigest } from '../registry/reference.js';
import { isPlainObject, parseStrictJson, requireExactKeys } from './strict-json.js';

export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const INTOTO_STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';
export const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;
const MAX_SUBJECTS = 1024;

export interface StatementSubject {
  name?: string;
  /** Algorithm → lowercase hex, e.g. `{ sha256: "…" }`. */
  digest: Record<string, string>;
}

export interface Statement {
  _type: string;
  subject: StatementSubject[];
  predicateType: string;
  predicate?: Record<string, unknown>;
}

/** `sha256:<hex>` → `{ name, digest: { sha256: hex } }`. */
export function subjectForDigest(name: string, digest: string): StatementSubject {
  if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
  const [alg, hex] = digest.split(':') as [string, string];
  return { name, digest: { [alg]: hex } };
}

/** A v1 Statement; the field order is the spec's. */
export function buildStatement(subject: StatementSubject[], predicateType: string, predicate: Record<string, unknown>): Statement {
  if (subject.length === 0) throw new SignetError('INVALID_ARGUMENT', 'an in-toto statement needs at least one subject');
  if (predicateType.length === 0) throw new SignetError('INVALID_ARGUMENT', 'an in-toto statement needs a predicateType');
  return { _type: INTOTO_STATEMENT_V1, subject, predicateType, predicate };
}

export function serializeStatement(statement: Statement): Buffer {
  return Buffer.from(JSON.stringify(statement));
}

const HEX_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128, sha1: 40 };
// v1 subjects are ResourceDescriptors; v0.1 subjects have only name and digest.
const V1_SUBJECT_FIELDS = ['name', 'uri', 'digest', 'content', 'downloadLocation', 'mediaType', 'annotations'];

/**
 * Parse a statement (a DSSE payload whose signature has already been checked, or not yet).
 * Returns the statement; predicate is left as an object for the predicate's own parser.
 */
export function parseStatement(untrustedPayload: Uint8Array | string): Statement {
  const text = typeof untrustedPayload === 'string' ? untrustedPayload : Buffer.from(untrustedPayload).toString('utf8');
  const doc = parseStrictJson(text, 'in-toto statement', 'SIGNATURE_MALFORMED', MAX_STATEMENT_BYTES);
  const fail = (why: string): never => {
    throw new SignetError('SIGNATURE_MALFORMED', `in-toto statement: ${why}`);
  };
  if (!isPlainObject(doc)) return fail('not a JSON object');
  requireExactKeys(doc, ['_type', 'subject', 'predicateType'], ['predicate'], 'in-toto statement');
  const type = doc['_type'];
  if (type !== INTOTO_STATEMENT_V1 && type !== INTOTO_STATEMENT_V01) {
    fail(`_type is ${JSON.stringify(type)}, expected "${INTOTO_STATEMENT_V1}" (or "${INTOTO_STATEMENT_V01}")`);
  }
  const predicateType = doc['predicateType'];
  if (typeof predicateType !== 'string' || predicateType.length === 0) fail('predicateType is not a non-empty string');
  const predicate = doc['predicate'];
  if (predicate !== undefined && predicate !== null && !isPlainObject(predicate)) fail('predicate is not an object');
  const subjects = doc['subject'];
  if (!Array.isArray(subjects) || subjects.length === 0) return fail('subject is not a non-empty array');
  if (subjects.length > MAX_SUBJECTS) fail(`more than ${MAX_SUBJECTS} subjects`);
  const subject: StatementSubject[] = [];
  for (const [i, s] of subjects.entries()) {
    const w = `subject ${i}`;
    if (!isPlainObject(s)) return fail(`${w} is not an object`);
    requireExactKeys(s, ['digest'], type === INTOTO_STATEMENT_V1 ? V1_SUBJECT_FIELDS : ['name'], `in-toto statement ${w}`);
    const name = s['name'];
    if (name !== undefined && typeof name !== 'string') fail(`${w}: name is not a string`);
    const digest = s['digest'];
    if (!isPlainObject(digest) || Object.keys(digest).length === 0) return fail(`${w}: digest is not a non-empty object`);
    const out: Record<string, string> = {};
    for (const [alg, value] of Object.entries(digest)) {
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/=_-]+$/.test(value)) fail(`${w}: digest.${alg} is not a string of hex or base64`);
      const len = HEX_LENGTHS[alg];
      if (len !== undefined && !new RegExp(`^[a-fA-F0-9]{${len}}$`).test(value as string)) fail(`${w}: digest.${alg} is not ${len} hex digits`);
      out[alg] = len !== undefined ? (value as string).toLowerCase() : (value as string);
    }
    subject.push({ ...(typeof name === 'string' ? { name } : {}), digest: out });
  }
  return { _type: type as string, subject, predicateType: predicateType as string, ...(isPlainObject(predicate) ? { predicate } : {}) };
}

/** Whether some subject of `statement` has `digest` (`sha256:<hex>`). */
export function statementCoversDigest(statement: Pick<Statement, 'subject'>, digest: string): boolean {
  if (!isDigest(digest)) return false;
  const [alg, hex] = digest.split(':') as [string, string];
  return statement.subject.some((s) => s.digest[alg]?.toLowerCase() === hex);
}
