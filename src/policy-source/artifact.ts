/**
 * A policy directory as an OCI artifact: one layer, a deterministic tar of the policy files (sorted
 * names, mode 0644, owner 0, time 0, no extended headers), an empty config and `artifactType`
 * application/vnd.signet.policy.v1+tar. The same files always give the same bytes, so the same digest.
 *
 * Reading is strict: what comes from a registry is untrusted until its signature is checked, and even
 * then only plain policy files (no directories, links or paths) within the policy limits are accepted.
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.js';
import { isPolicyFileName, POLICY_LIMITS } from '../policy/load.js';
import { printable } from '../util/printable.js';
import { MEDIA_TYPES } from '../registry/types.js';

export const POLICY_ARTIFACT_TYPE = 'application/vnd.signet.policy.v1+tar';
export const POLICY_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';
/** The layer's tar: every file and its headers, plus the end blocks. */
export const MAX_POLICY_LAYER_BYTES = POLICY_LIMITS.totalBytes + (POLICY_LIMITS.files + 2) * 1024 + 10240;
const BLOCK = 512;

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** A deterministic ustar archive of `files` (names are plain file names). */
export function policyTar(files: Array<{ name: string; bytes: Buffer }>): Buffer {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: Buffer[] = [];
  for (const f of sorted) {
    if (Buffer.byteLength(f.name) > 100 || f.name.includes('/'))
      throw new SignetError('INVALID_ARGUMENT', `policy file name "${printable(f.name, 128)}" is not a plain name of at most 100 bytes`);
    const h = Buffer.alloc(BLOCK);
    h.write(f.name, 0, 'utf8');
    h.write(octal(0o644, 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(f.bytes.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write('0', 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    parts.push(h, f.bytes, Buffer.alloc((BLOCK - (f.bytes.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** The policy files of a tar, every header checked; throws POLICY_INVALID naming what is wrong. */
export function readPolicyTar(untrusted: Buffer, where: string): Array<{ name: string; text: string }> {
  const bad = (message: string): never => {
    throw new SignetError('POLICY_INVALID', `${where}: ${message}`);
  };
  if (untrusted.length > MAX_POLICY_LAYER_BYTES) bad(`the policy layer is larger than ${MAX_POLICY_LAYER_BYTES} bytes`);
  const out: Array<{ name: string; text: string }> = [];
  const seen = new Set<string>();
  let total = 0;
  let at = 0;
  for (;;) {
    if (at + BLOCK > untrusted.length) bad('the tar ends without its end blocks');
    const h = untrusted.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const field = (start: number, len: number): string => {
      const raw = h.subarray(start, start + len);
      const end = raw.indexOf(0);
      return raw.subarray(0, end === -1 ? len : end).toString('latin1');
    };
    const num = (start: number, len: number, what: string): number => {
      const t = field(start, len).trim();
      if (!/^[0-7]{1,11}$/.test(t)) bad(`tar header ${what} is not an octal number`);
      return parseInt(t, 8);
    };
    if (num(148, 8, 'checksum') !== sum) bad('a tar header checksum does not match');
    const name = Buffer.from(field(0, 100), 'latin1').toString('utf8');
    const prefix = field(345, 155);
    const type = field(156, 1);
    if (prefix !== '' || name.includes('/') || name.includes('\\') || !isPolicyFileName(name))
      bad(`"${printable(prefix ? `${prefix}/${name}` : name, 128)}" is not a policy file name (*.yaml, *.yml, *.json, no directories)`);
    if (type !== '0' && type !== '')
      bad(`"${printable(name, 128)}" is not a regular file (tar type ${printable(type, 4)}); a policy artifact holds policy files only`);
    if (seen.has(name)) bad(`"${printable(name, 128)}" is in the artifact twice`);
    seen.add(name);
    const size = num(124, 12, 'size');
    if (size > POLICY_LIMITS.fileBytes) bad(`"${printable(name, 128)}" is larger than ${POLICY_LIMITS.fileBytes} bytes`);
    total += size;
    if (total > POLICY_LIMITS.totalBytes) bad(`the policy files together are larger than ${POLICY_LIMITS.totalBytes} bytes`);
    if (out.length >= POLICY_LIMITS.files) bad(`more than ${POLICY_LIMITS.files} policy files`);
    const start = at + BLOCK;
    if (start + size > untrusted.length) bad(`"${printable(name, 128)}" is cut short`);
    out.push({ name, text: untrusted.subarray(start, start + size).toString('utf8') });
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (out.length === 0) bad('the artifact holds no policy files');
  return out;
}

/** The artifact's blobs and manifest, ready to push: the same files give the same manifest digest. */
export function buildPolicyArtifact(files: Array<{ name: string; bytes: Buffer }>): { layer: Buffer; config: Buffer; manifest: Buffer; digest: string } {
  const layer = policyTar(files);
  const config = Buffer.from('{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: POLICY_ARTIFACT_TYPE,
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256(config), size: config.length },
      layers: [{ mediaType: POLICY_LAYER_MEDIA_TYPE, digest: sha256(layer), size: layer.length }],
    }),
  );
  return { layer, config, manifest, digest: sha256(manifest) };
}

/** The policy layer a (digest-verified) manifest names; throws POLICY_INVALID when it is not a signet policy artifact. */
export function policyLayerOf(manifestBytes: Buffer, where: string): { digest: string; size: number } {
  let doc: { mediaType?: unknown; artifactType?: unknown; config?: { mediaType?: unknown }; layers?: unknown };
  try {
    doc = JSON.parse(manifestBytes.toString('utf8')) as typeof doc;
  } catch {
    throw new SignetError('POLICY_INVALID', `${where}: the manifest is not JSON`);
  }
  const type = doc?.artifactType ?? doc?.config?.mediaType;
  if (type !== POLICY_ARTIFACT_TYPE)
    throw new SignetError(
      'POLICY_INVALID',
      `${where}: not a signet policy artifact (artifactType ${printable(String(type), 128)}, expected ${POLICY_ARTIFACT_TYPE}); push one with signet policy push`,
    );
  const layers = doc.layers;
  if (!Array.isArray(layers) || layers.length !== 1) throw new SignetError('POLICY_INVALID', `${where}: a policy artifact has exactly one layer`);
  const l = layers[0] as { mediaType?: unknown; digest?: unknown; size?: unknown };
  if (
    l.mediaType !== POLICY_LAYER_MEDIA_TYPE ||
    typeof l.digest !== 'string' ||
    !/^sha256:[0-9a-f]{64}$/.test(l.digest) ||
    typeof l.size !== 'number' ||
    !Number.isSafeInteger(l.size) ||
    l.size < 0
  ) {
    throw new SignetError('POLICY_INVALID', `${where}: the policy layer is not a ${POLICY_LAYER_MEDIA_TYPE} with a sha256 digest and a size`);
  }
  if (l.size > MAX_POLICY_LAYER_BYTES)
    throw new SignetError('POLICY_INVALID', `${where}: the policy layer is ${l.size} bytes, more than ${MAX_POLICY_LAYER_BYTES}`);
  return { digest: l.digest, size: l.size };
}
