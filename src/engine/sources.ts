/** Where signatures come from: the registry today, OCI layouts and referrers later. */
import type { SignetError } from '../errors.js';
import type { FormatName, UntrustedSignature } from '../formats/types.js';
import type { ImageReference } from '../registry/reference.js';

/** A signature that was found but could not be read (payload blob tampered, malformed layer…). */
export interface UnreadableSignature {
  format: FormatName;
  source: string;
  error: SignetError;
}

export type DiscoveredSignature = UntrustedSignature | UnreadableSignature;

export function isUnreadable(sig: DiscoveredSignature): sig is UnreadableSignature {
  return 'error' in sig;
}

export interface SignatureSource {
  readonly name: string;
  /**
   * Every signature stored for `digest` of `image`'s repository, at most `limit`.
   * Throws (SignetError) only when the lookup itself failed — registry down, denied, timed out.
   */
  find(image: ImageReference, digest: string, options: { limit: number; signal?: AbortSignal }): Promise<DiscoveredSignature[]>;
}
