/**
 * Write a cosign v3-style image signature: a sigstore bundle (v0.3) whose DSSE envelope carries an
 * in-toto statement (predicate https://sigstore.dev/cosign/sign/v1) about the digest, pushed as an OCI
 * 1.1 referrer of the image (with the referrers tag kept up to date for registries without the API).
 */
import { bundleToJSON, toDSSEBundle } from '@sigstore/bundle';
import { COSIGN_SIGN_PREDICATE_TYPE } from '../formats/bundle.js';
import { INTOTO_PAYLOAD_TYPE, preAuthEncoding } from '../formats/dsse.js';
import { buildStatement, serializeStatement, subjectForDigest } from '../formats/intoto.js';
import { dsseHashFor } from '../formats/dsse.js';
import type { Signer } from '../keys/types.js';
import type { RegistryClient, RepositoryRef } from '../registry/client.js';
import type { Descriptor } from '../registry/types.js';
import { pushReferrer } from './referrer.js';

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export async function buildImageBundle(repositoryName: string, digest: string, signer: Signer): Promise<Buffer> {
  const statement = serializeStatement(buildStatement([subjectForDigest(repositoryName, digest)], COSIGN_SIGN_PREDICATE_TYPE, {}));
  const signature = Buffer.from(await signer.sign(preAuthEncoding(INTOTO_PAYLOAD_TYPE, statement), dsseHashFor(signer.algorithm)));
  const bundle = toDSSEBundle({ artifact: statement, artifactType: INTOTO_PAYLOAD_TYPE, signature, keyHint: signer.fingerprint });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/** Push `bundle` as a referrer of the image `subject`; returns the referrer manifest's digest. */
export function pushBundleReferrer(client: RegistryClient, repo: RepositoryRef, subject: Descriptor, bundle: Buffer): Promise<string> {
  return pushReferrer(client, repo, subject, BUNDLE_ARTIFACT_TYPE, BUNDLE_ARTIFACT_TYPE, bundle);
}
