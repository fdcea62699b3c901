/**
 * Write a cosign v3-style image signature: a sigstore bundle (v0.3) whose DSSE envelope carries an
 * in-toto statement (predicate https://sigstore.dev/cosign/sign/v1) about the digest, pushed as an OCI
 * 1.1 referrer of the image (with the referrers tag kept up to date for registries without the API).
 * What is signed is the format module's business (formats/bundle.ts `sign`); where it goes, its `location`.
 * A bundle by the same key for the same digest already among the referrers: nothing is pushed.
 */
import { sigstoreBundleFormat } from '../formats/bundle.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import type { Descriptor } from '../registry/types.js';
import { findBundleReferrer, signerKey } from './already-signed.js';
import { pushReferrer } from './referrer.js';

const location = sigstoreBundleFormat.location as Extract<typeof sigstoreBundleFormat.location, { kind: 'referrers' }>;
export const BUNDLE_ARTIFACT_TYPE = location.artifactTypes[0]!;

export async function buildImageBundle(repositoryName: string, digest: string, signer: Signer): Promise<Buffer> {
  return (await sigstoreBundleFormat.sign!({ repositoryName, dockerReference: repositoryName, digest }, signer)).blob;
}

/** Push `bundle` as a referrer of the image `subject`; returns the referrer manifest's digest. */
export function pushBundleReferrer(client: RegistryClient, repo: RepositoryRef, subject: Descriptor, bundle: Buffer): Promise<string> {
  return pushReferrer(client, repo, subject, BUNDLE_ARTIFACT_TYPE, location.layerMediaTypes[0]!, bundle);
}

/**
 * Sign `subject` as a sigstore bundle and push it as a referrer, unless a bundle by the same key for the
 * same digest is already there. `added` says which; `referrer` is the digest of the new or existing one.
 */
export async function signImageBundle(
  client: RegistryClient,
  repo: RepositoryRef,
  subject: Descriptor,
  repositoryName: string,
  signer: Signer,
): Promise<{ referrer: string; added: boolean }> {
  const existing = await findBundleReferrer(client, repo, subject, signerKey(signer));
  if (existing !== undefined) return { referrer: existing, added: false };
  return { referrer: await pushBundleReferrer(client, repo, subject, await buildImageBundle(repositoryName, subject.digest, signer)), added: true };
}
