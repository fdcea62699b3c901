/**
 * X.509 distinguished names for Notary Project trusted identities (`x509.subject: C=US, ST=WA, O=Notary`).
 * As the trust policy specification says, an identity matches a signing certificate when every RDN
 * attribute it names is in the certificate's subject with the same value (order does not matter, the
 * subject may carry more attributes); an identity must name at least C, ST and O. Attributes appearing
 * twice (or multi-valued RDNs) are refused on both sides, as notation does: they make matching ambiguous.
 */
import { ASN1Obj } from '@sigstore/core';
import { SignetError } from '../../errors.js';

/** Attribute type short names (RFC 4514 and the ones notation recognises), by OID. */
const NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'T',
  '2.5.4.17': 'POSTALCODE',
  '2.5.4.42': 'GN',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
};
const ALIASES: Record<string, string> = { S: 'ST', EMAILADDRESS: 'E' };

/** A DN as attribute → value; the order of `entries` is the order written. */
export interface DistinguishedName {
  entries: Array<[type: string, value: string]>;
}

/** Decode a Name (RDNSequence) as carried in a certificate's subject: DER bytes or the parsed object. */
export function parseDerName(name: Buffer | ASN1Obj): DistinguishedName {
  const seq = name instanceof ASN1Obj ? name : ASN1Obj.parseBuffer(name as Buffer<ArrayBuffer>);
  const entries: Array<[string, string]> = [];
  for (const rdn of seq.subs) {
    if (rdn.subs.length !== 1) throw new SignetError('CERTIFICATE_INVALID', 'certificate subject has a multi-valued RDN');
    const atv = rdn.subs[0]!;
    if (atv.subs.length !== 2) throw new SignetError('CERTIFICATE_INVALID', 'certificate subject has a malformed RDN');
    const oid = atv.subs[0]!.toOID();
    const valueObj = atv.subs[1]!;
    // BMPString (30) is UTF-16BE; the other directory string types are UTF-8 compatible.
    const value = valueObj.tag.number === 30 ? Buffer.from(valueObj.value).swap16().toString('utf16le') : valueObj.value.toString('utf8');
    entries.push([NAMES[oid] ?? oid, value]);
  }
  return { entries: noDuplicates(entries, 'certificate subject') };
}

function noDuplicates(entries: Array<[string, string]>, where: string): Array<[string, string]> {
  const seen = new Set<string>();
  for (const [type] of entries) {
    if (seen.has(type)) throw new SignetError('CERTIFICATE_INVALID', `${where} has the RDN attribute ${type} twice`);
    seen.add(type);
  }
  return entries;
}

/** Split on unescaped `sep`, keeping escapes for the next step. */
function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && i + 1 < text.length) {
      cur += ch + text[i + 1]!;
      i++;
    } else if (ch === sep) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function unescape(text: string, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) throw new SignetError('POLICY_INVALID', `${where} ends with a lone backslash`);
    out += next;
    i++;
  }
  return out;
}

/** Trim unescaped spaces at both ends (an escaped `\ ` is kept). */
function trimUnescaped(text: string): string {
  let start = 0;
  while (start < text.length && text[start] === ' ') start++;
  let end = text.length;
  while (end > start && text[end - 1] === ' ' && text[end - 2] !== '\\') end--;
  return text.slice(start, end);
}

export const X509_SUBJECT_PREFIX = 'x509.subject:';

/** Parse one trusted identity `x509.subject: C=US, ST=WA, O=Notary`. Throws POLICY_INVALID. */
export function parseTrustedIdentity(identity: string): DistinguishedName {
  if (!identity.startsWith(X509_SUBJECT_PREFIX))
    throw new SignetError('POLICY_INVALID', `trusted identity ${JSON.stringify(identity)} does not start with "${X509_SUBJECT_PREFIX}" (or is not "*")`);
  const where = `trusted identity ${JSON.stringify(identity)}`;
  const entries: Array<[string, string]> = [];
  for (const raw of splitUnescaped(identity.slice(X509_SUBJECT_PREFIX.length), ',')) {
    const part = trimUnescaped(raw);
    if (part === '') throw new SignetError('POLICY_INVALID', `${where} has an empty RDN`);
    if (splitUnescaped(part, '+').length > 1) throw new SignetError('POLICY_INVALID', `${where} has a multi-valued RDN`);
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SignetError('POLICY_INVALID', `${where}: ${JSON.stringify(part)} is not TYPE=value`);
    const rawType = part.slice(0, eq).trim().toUpperCase();
    const type = ALIASES[rawType] ?? rawType;
    entries.push([type, unescape(trimUnescaped(part.slice(eq + 1)), where)]);
  }
  try {
    noDuplicates(entries, where);
  } catch (err) {
    throw new SignetError('POLICY_INVALID', (err as Error).message);
  }
  for (const required of ['C', 'ST', 'O']) {
    if (!entries.some(([t]) => t === required)) throw new SignetError('POLICY_INVALID', `${where} must name C, ST and O (missing ${required})`);
  }
  return { entries };
}

/** Does the certificate subject carry every attribute of `identity` with the same value? */
export function dnMatches(identity: DistinguishedName, subject: DistinguishedName): boolean {
  const have = new Map(subject.entries);
  return identity.entries.every(([type, value]) => have.get(type) === value);
}

/** `C=US, ST=WA, O=Notary` as written, for reasons and audit. */
export function formatDn(dn: DistinguishedName): string {
  return dn.entries.map(([t, v]) => `${t}=${v.replace(/([\\,;+])/g, '\\$1')}`).join(', ');
}
