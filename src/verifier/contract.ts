/**
 * containerd's bindir image-verifier contract (containerd 2.x, io.containerd.image-verifier.v1.bindir):
 *   <file> -name <ref> -digest <digest> -stdin-media-type application/vnd.oci.descriptor.v1+json
 * with the resolved OCI descriptor as one JSON line on stdin. Parsed here without any dependency,
 * because this runs once per pull and must start fast.
 */
export const DESCRIPTOR_MEDIA_TYPE = 'application/vnd.oci.descriptor.v1+json';
const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;

export class UsageError extends Error {}

/**
 * `signet-verifier -version` (or `--version`), alone: print `signet-verifier <version>` and exit 0.
 * Not part of containerd's contract (containerd always passes -name, -digest and -stdin-media-type);
 * `signet doctor` uses it to check that the file in bin_dir starts.
 */
export function isVersionRequest(argv: string[]): boolean {
  return argv.length === 1 && (argv[0] === '-version' || argv[0] === '--version');
}

export function versionLine(version: string): string {
  return `signet-verifier ${version}`;
}

export interface VerifierArgs {
  name: string;
  digest: string;
  stdinMediaType: string;
}

export interface UntrustedDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

/** Go `flag` package syntax: `-flag value`, `-flag=value`, one or two dashes. Unknown or repeated flags are errors. */
export function parseVerifierArgs(argv: string[]): VerifierArgs {
  const names: Record<string, keyof VerifierArgs> = { name: 'name', digest: 'digest', 'stdin-media-type': 'stdinMediaType' };
  const out: Partial<VerifierArgs> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw new UsageError(`unexpected argument "${arg}"`);
    const field = names[m[1]!];
    if (field === undefined) throw new UsageError(`unknown flag "-${m[1]}"`);
    if (out[field] !== undefined) throw new UsageError(`flag "-${m[1]}" given twice`);
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag "-${m[1]}" needs a value`);
      value = argv[++i]!;
    }
    out[field] = value;
  }
  if (!out.name) throw new UsageError('missing -name');
  if (!out.digest) throw new UsageError('missing -digest');
  if (!out.stdinMediaType) throw new UsageError('missing -stdin-media-type');
  if (!DIGEST_RE.test(out.digest)) throw new UsageError(`-digest "${out.digest}" is not a sha256 or sha512 digest`);
  if (out.stdinMediaType !== DESCRIPTOR_MEDIA_TYPE) {
    throw new UsageError(`-stdin-media-type "${out.stdinMediaType}" is not supported (expected ${DESCRIPTOR_MEDIA_TYPE})`);
  }
  if (out.name.length > 4096 || /[\s\0]/.test(out.name)) throw new UsageError('-name is not an image reference');
  return out as VerifierArgs;
}

/** The descriptor from stdin: strict types, and it must be for the digest named on the command line. */
export function parseStdinDescriptor(untrustedText: string, expectedDigest: string): UntrustedDescriptor {
  let value: unknown;
  try {
    value = JSON.parse(untrustedText);
  } catch {
    throw new UsageError('stdin is not a JSON OCI descriptor');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('stdin descriptor is not a JSON object');
  const d = value as Record<string, unknown>;
  if (typeof d['mediaType'] !== 'string' || d['mediaType'].length === 0) throw new UsageError('stdin descriptor has no mediaType');
  if (typeof d['digest'] !== 'string' || !DIGEST_RE.test(d['digest'])) throw new UsageError('stdin descriptor has no valid digest');
  if (typeof d['size'] !== 'number' || !Number.isSafeInteger(d['size']) || d['size'] < 0) throw new UsageError('stdin descriptor has no valid size');
  if (d['digest'] !== expectedDigest) {
    throw new UsageError(`stdin descriptor digest ${d['digest']} does not match -digest ${expectedDigest}`);
  }
  const annotations: Record<string, string> = {};
  if (d['annotations'] !== undefined) {
    if (typeof d['annotations'] !== 'object' || d['annotations'] === null) throw new UsageError('stdin descriptor annotations are not an object');
    for (const [k, v] of Object.entries(d['annotations'] as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new UsageError(`stdin descriptor annotation "${k}" is not a string`);
      annotations[k] = v;
    }
  }
  return { mediaType: d['mediaType'], digest: d['digest'], size: d['size'], annotations };
}

/** `8s`, `500ms`, `1.5s` → milliseconds. */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text.trim());
  if (m === null) throw new UsageError(`"${text}" is not a duration like 8s or 500ms`);
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  if (!(ms > 0) || ms > 600_000) throw new UsageError(`duration "${text}" is out of range`);
  return ms;
}
