/**
 * An OCI image layout on disk (as `cosign save` or `oras copy --to-oci-layout` write it) as a
 * ContentStore for air-gapped nodes: `index.json` entries named by `org.opencontainers.image.ref.name`,
 * `blobs/<alg>/<hex>`, referrers found through their manifests' `subject`. Everything read is
 * digest-verified and size-capped like registry content.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SignetError } from '../errors.js';
import type { RepositoryRef } from './client.js';
import { isDigest } from './reference.js';
import type { ContentStore, StoreCallOptions } from './store.js';
import type { Descriptor, FetchedManifest } from './types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_INDEX_BYTES = 16 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class OciLayoutStore implements ContentStore {
  readonly name: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.name = `oci-layout:${this.dir}`;
  }

  private async readCapped(path: string, max: number, what: string): Promise<Buffer> {
    try {
      const s = await stat(path);
      if (s.size > max) throw new SignetError('BLOB_TOO_LARGE', `${this.name}: ${what} is ${s.size} bytes, more than ${max}`);
      return await readFile(path);
    } catch (err) {
      if (err instanceof SignetError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SignetError('REGISTRY_NOT_FOUND', `${this.name}: ${what} not found`);
      throw new SignetError('REGISTRY_UNAVAILABLE', `${this.name}: cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  private async index(): Promise<Descriptor[]> {
    const bytes = await this.readCapped(join(this.dir, 'index.json'), MAX_INDEX_BYTES, 'index.json');
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new SignetError('REGISTRY_PROTOCOL', `${this.name}: index.json is not JSON`);
    }
    const manifests = (doc as { manifests?: unknown } | null)?.manifests;
    if (!Array.isArray(manifests)) throw new SignetError('REGISTRY_PROTOCOL', `${this.name}: index.json has no manifests list`);
    return manifests.filter((m): m is Descriptor => typeof m === 'object' && m !== null && typeof m.digest === 'string' && isDigest(m.digest));
  }

  async getBlob(_repo: RepositoryRef, digest: string, options: StoreCallOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    if (!isDigest(digest)) throw new SignetError('INVALID_ARGUMENT', `not a digest: ${digest}`);
    const [alg, hex] = digest.split(':') as [string, string];
    const bytes = await this.readCapped(join(this.dir, 'blobs', alg, hex), options.maxBytes ?? 16 * 1024 * 1024, `blob ${digest}`);
    if (createHash(alg).update(bytes).digest('hex') !== hex) throw new SignetError('DIGEST_MISMATCH', `${this.name}: blob ${digest} does not match its digest`);
    return bytes;
  }

  async tryGetManifest(repo: RepositoryRef, reference: string, options: StoreCallOptions = {}): Promise<FetchedManifest | undefined> {
    let descriptor: Descriptor | undefined;
    if (isDigest(reference)) descriptor = { mediaType: '', digest: reference, size: 0 };
    else {
      // A layout holds one repository's artifacts; names may be full references or bare tags.
      descriptor = (await this.index()).find((m) => {
        const n = m.annotations?.[REF_NAME];
        return n === reference || (n !== undefined && n.endsWith(`:${reference}`) && n.slice(0, -reference.length - 1).endsWith(repo.repository));
      });
    }
    if (descriptor === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = await this.getBlob(repo, descriptor.digest, { maxBytes: MAX_MANIFEST_BYTES, ...options });
    } catch (err) {
      if (err instanceof SignetError && err.code === 'REGISTRY_NOT_FOUND') return undefined;
      throw err;
    }
    let mediaType = descriptor.mediaType;
    try {
      mediaType = ((JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? mediaType) || 'application/vnd.oci.image.manifest.v1+json';
    } catch {
      throw new SignetError('REGISTRY_PROTOCOL', `${this.name}: manifest ${descriptor.digest} is not JSON`);
    }
    return { bytes, digest: descriptor.digest, mediaType };
  }

  /** Manifests in index.json whose `subject` is `digest`. */
  async referrers(repo: RepositoryRef, digest: string, options: StoreCallOptions & { artifactType?: string; limit: number }): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const m of await this.index()) {
      if (out.length >= options.limit) break;
      let doc: { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
      try {
        doc = JSON.parse((await this.getBlob(repo, m.digest, { maxBytes: MAX_MANIFEST_BYTES })).toString('utf8')) as typeof doc;
      } catch {
        continue; // not a readable manifest: not a referrer we can use
      }
      if (doc.subject?.digest !== digest) continue;
      const artifactType = doc.artifactType ?? doc.config?.mediaType;
      if (options.artifactType !== undefined && artifactType !== options.artifactType) continue;
      out.push({ ...m, ...(artifactType ? { artifactType } : {}), ...(doc.annotations ? { annotations: doc.annotations } : {}) });
    }
    return out;
  }
}
