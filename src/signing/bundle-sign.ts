/**
 * Write a cosign v3-style image signature: a sigstore bundle (v0.3) whose DSSE envelope carries an
 * in-toto statement (predicate https://sigstore.dev/cosign/sign/v1) about the digest, pushed as an OCI
 * 1.1 referrer of the image (with the referrers tag kept up to date for registries without the API).
 */
import { bundleToJSON, toDSSEBundle } from '@sigstore/bundle';
import { COSIGN_SIGN_PREDICATE_TYPE } from '../formats/bundle.js';
import { sha256Digest } from '../formats/cosign.js';
import { INTOTO_PAYLOAD_TYPE, preAuthEncoding } from '../formats/dsse.js';
import { buildStatement, serializeStatement, subjectForDigest } from '../formats/intoto.js';
import { dsseHashFor } from '../formats/dsse.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import { MEDIA_TYPES, type Descriptor } from '../registry/types.js';

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export async function buildImageBundle(repositoryName: string, digest: string, signer: Signer): Promise<Buffer> {
  const statement = serializeStatement(buildStatement([subjectForDigest(repositoryName, digest)], COSIGN_SIGN_PREDICATE_TYPE, {}));
  const signature = Buffer.from(await signer.sign(preAuthEncoding(INTOTO_PAYLOAD_TYPE, statement), dsseHashFor(signer.algorithm)));
  const bundle = toDSSEBundle({ artifact: statement, artifactType: INTOTO_PAYLOAD_TYPE, signature, keyHint: signer.fingerprint });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/** Push `bundle` as a referrer of the image `subject`; returns the referrer manifest's digest. */
export async function pushBundleReferrer(client: RegistryClient, repo: RepositoryRef, subject: Descriptor, bundle: Buffer): Promise<string> {
  const empty = Buffer.from('{}');
  await client.pushBlob(repo, empty);
  await client.pushBlob(repo, bundle);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: BUNDLE_ARTIFACT_TYPE,
    config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256Digest(empty), size: empty.length },
    layers: [{ mediaType: BUNDLE_ARTIFACT_TYPE, digest: sha256Digest(bundle), size: bundle.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }));
  const digest = await client.pushManifest(repo, sha256Digest(manifest), manifest, MEDIA_TYPES.ociManifest);
  // Referrers tag schema, for registries without the referrers API: add to the index at sha256-<hex>.
  const tag = subject.digest.replace(':', '-');
  const existing = await client.tryGetManifest(repo, tag, { accept: [MEDIA_TYPES.ociIndex] });
  const manifests: Descriptor[] = existing ? ((JSON.parse(existing.bytes.toString('utf8')) as { manifests?: Descriptor[] }).manifests ?? []) : [];
  if (!manifests.some((m) => m.digest === digest)) manifests.push({ mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length, artifactType: BUNDLE_ARTIFACT_TYPE });
  await client.pushManifest(repo, tag, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests })), MEDIA_TYPES.ociIndex);
  return digest;
}
