/**
 * A small *runnable* OCI image built from Debian's busybox-static (/bin/busybox): one layer with
 * bin/busybox and a few applet symlinks, an optional second tiny layer with one file, and a config
 * whose Entrypoint/Cmd run busybox. Pushed with the project's RegistryClient, so containerd can pull,
 * unpack and run it. The busybox layer is built once per test process; every call gets a fresh label
 * (and optionally a file) so each test has its own digests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { RegistryClient, RepositoryRef } from '../../src/registry/client.js';
import { MEDIA_TYPES, type Descriptor } from '../../src/registry/types.js';
import { pushImage, type PushedImage } from './images.js';

export const BUSYBOX = '/bin/busybox';
/** The applets linked next to busybox in the layer (bin/<name> → busybox). */
export const BUSYBOX_APPLETS = ['sh', 'sleep', 'true', 'false', 'echo', 'cat', 'ls'] as const;

export const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** One entry of a tar archive (ustar). */
export interface TarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode?: number;
  content?: Buffer;
  linkname?: string;
}

/** A POSIX ustar archive of `entries`, deterministic (mtime 0, uid/gid 0), ending with two zero blocks. */
export function makeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    if (Buffer.byteLength(name) > 100) throw new Error(`tar: path too long for this writer: ${name}`);
    const content = e.type === 'file' ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
    h.write(name, 0, 100, 'utf8');
    h.write(octal(e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644), 8), 100, 8, 'ascii');
    h.write(octal(0, 8), 108, 8, 'ascii'); // uid
    h.write(octal(0, 8), 116, 8, 'ascii'); // gid
    h.write(octal(content.length, 12), 124, 12, 'ascii');
    h.write(octal(0, 12), 136, 12, 'ascii'); // mtime
    h.write('        ', 148, 8, 'ascii'); // checksum placeholder
    h.write(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156, 1, 'ascii');
    if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
    h.write('ustar\0', 257, 6, 'ascii');
    h.write('00', 263, 2, 'ascii');
    h.write('root', 265, 32, 'ascii');
    h.write('root', 297, 32, 'ascii');
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(h);
    if (content.length > 0) {
      blocks.push(content);
      const pad = (512 - (content.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

interface Layer {
  /** The bytes pushed (compressed or not). */
  blob: Buffer;
  mediaType: string;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
}

const layerCache = new Map<string, Layer>();

function layerOf(tar: Buffer, gzip: boolean): Layer {
  return gzip
    ? { blob: gzipSync(tar, { level: 1 }), mediaType: LAYER_TAR_GZIP, diffId: sha256(tar) }
    : { blob: tar, mediaType: LAYER_TAR, diffId: sha256(tar) };
}

/** The busybox layer: bin/busybox plus the applet symlinks, built once per process and compression. */
export function busyboxLayer(gzip = true): Layer {
  const key = gzip ? 'gzip' : 'tar';
  const cached = layerCache.get(key);
  if (cached) return cached;
  if (!statSync(BUSYBOX, { throwIfNoEntry: false })?.isFile())
    throw new Error(`${BUSYBOX} is missing: run "npm test" (or bash scripts/bootstrap.sh) to install busybox-static`);
  const tar = makeTar([
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', type: 'file', mode: 0o755, content: readFileSync(BUSYBOX) },
    ...BUSYBOX_APPLETS.map((a): TarEntry => ({ path: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { path: 'etc', type: 'dir' },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ]);
  const layer = layerOf(tar, gzip);
  layerCache.set(key, layer);
  return layer;
}

export interface RunnableImageOptions {
  /** Tag to push under; by digest when absent. */
  tag?: string;
  /** gzip the layers (default true). */
  gzip?: boolean;
  /** Config labels; `org.signet.test.nonce` is always set to a fresh random value unless given. */
  labels?: Record<string, string>;
  /** A file added in a second small layer (e.g. `{ path: 'etc/signet-test', content: 'hello' }`). */
  file?: { path: string; content: string | Buffer };
  entrypoint?: string[];
  cmd?: string[];
}

export interface RunnableImage extends PushedImage {
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

/** Build and push a runnable linux/amd64 busybox image to `repo`. */
export async function pushRunnableImage(client: RegistryClient, repo: RepositoryRef, options: RunnableImageOptions = {}): Promise<RunnableImage> {
  const gzip = options.gzip ?? true;
  const layers: Layer[] = [busyboxLayer(gzip)];
  if (options.file) {
    const dirs = options.file.path
      .split('/')
      .slice(0, -1)
      .map((_, i, all) => all.slice(0, i + 1).join('/'));
    const content = typeof options.file.content === 'string' ? Buffer.from(options.file.content) : options.file.content;
    layers.push(layerOf(makeTar([...dirs.map((d): TarEntry => ({ path: d, type: 'dir' })), { path: options.file.path, type: 'file', content }]), gzip));
  }
  const labels = { 'org.signet.test.nonce': randomBytes(8).toString('hex'), ...options.labels };
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: new Date().toISOString(),
      config: {
        Env: ['PATH=/bin'],
        Entrypoint: options.entrypoint ?? ['/bin/sh', '-c'],
        Cmd: options.cmd ?? ['echo signet-test-image'],
        Labels: labels,
        WorkingDir: '/',
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created_by: 'signet test/helpers/runnable-image.ts' })),
    }),
  );
  for (const l of layers) await client.pushBlob(repo, l.blob);
  await client.pushBlob(repo, config);
  const configDesc: Descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: sha256(config), size: config.length };
  const layerDescs: Descriptor[] = layers.map((l) => ({ mediaType: l.mediaType, digest: sha256(l.blob), size: l.blob.length }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDesc, layers: layerDescs }));
  const digest = await client.pushManifest(repo, options.tag ?? sha256(manifest), manifest, MEDIA_TYPES.ociManifest);
  return {
    digest,
    size: manifest.length,
    mediaType: MEDIA_TYPES.ociManifest,
    manifestBytes: manifest,
    config: configDesc,
    layers: layerDescs,
    diffIds: layers.map((l) => l.diffId),
  };
}

/**
 * An OCI image index over a runnable linux/amd64 busybox image and a linux/arm64 child (random
 * layers, as pushIndex makes: never unpacked on this amd64 host).
 */
export async function pushRunnableIndex(
  client: RegistryClient,
  repo: RepositoryRef,
  options: RunnableImageOptions = {},
): Promise<PushedImage & { children: PushedImage[]; runnable: RunnableImage }> {
  const { tag, ...childOptions } = options;
  const runnable = await pushRunnableImage(client, repo, childOptions);
  const arm = await pushImage(client, repo, undefined, { architecture: 'arm64', os: 'linux' });
  const platforms = [
    { architecture: 'amd64', os: 'linux' },
    { architecture: 'arm64', os: 'linux' },
  ];
  const children: PushedImage[] = [runnable, arm];
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: children.map((c, i): Descriptor => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: platforms[i]! })),
    }),
  );
  const digest = await client.pushManifest(repo, tag ?? sha256(index), index, MEDIA_TYPES.ociIndex);
  return { digest, size: index.length, mediaType: MEDIA_TYPES.ociIndex, manifestBytes: index, children, runnable };
}
