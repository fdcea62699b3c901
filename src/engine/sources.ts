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

/** What a source is asked for. */
export interface FindOptions {
  /** Signatures returned at most. */
  limit: number;
  signal?: AbortSignal;
  /**
   * When more than `limit` are stored: how many a source that can do so cheaply (the tag source: one
   * manifest, small payloads) may read and put in `order` to choose its `limit` from. A bound, not a target.
   */
  candidates?: number;
  /** Puts candidates in the order to examine them (engine/signature-order.ts): those the scope's keys can verify first. */
  order?: <T extends DiscoveredSignature>(candidates: readonly T[]) => Promise<T[]>;
  /** Puts listed referrers in the order to fetch them (engine/signature-order.ts), before the cut to `limit`. */
  orderReferrers?: <T extends { annotations?: Record<string, string> }>(descriptors: readonly T[]) => T[];
  /** Told how many distinct signatures were found but not returned (past `limit`), for the decision's warnings. */
  leftOut?: (count: number) => void;
}

export interface SignatureSource {
  readonly name: string;
  /**
   * Every signature stored for `digest` of `image`'s repository, at most `limit`.
   * Throws (SignetError) only when the lookup itself failed — registry down, denied, timed out.
   */
  find(image: ImageReference, digest: string, options: FindOptions): Promise<DiscoveredSignature[]>;
}
