/**
 * The signature formats this build reads, in the order their sources are asked. Discovery
 * (engine/default-sources.ts), evaluation (engine/evaluate.ts) and the policy schema's `formats` enum
 * (held to this list by test/unit/registries.test.ts) all derive from it.
 *
 * A new format is one module in this folder (a SignatureFormat: location, verify, optionally sign)
 * and one line here.
 */
import { sigstoreBundleFormat } from './bundle.js';
import { cosignFormat } from './cosign.js';
import { notationFormat } from './notation-format.js';
import type { SignatureFormat } from './types.js';

export const FORMAT_LIST = [cosignFormat, sigstoreBundleFormat, notationFormat] as const;

export type FormatName = (typeof FORMAT_LIST)[number]['name'];

export const ALL_FORMATS: readonly FormatName[] = FORMAT_LIST.map((f) => f.name);

/** The module for `name`, or undefined when this build cannot verify that format. */
export function formatNamed(name: string): SignatureFormat<FormatName> | undefined {
  return FORMAT_LIST.find((f) => f.name === name);
}
