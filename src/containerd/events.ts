/**
 * containerd's event envelopes, decoded: the image events signet acts on. The payload is a
 * google.protobuf.Any whose type URL names the message (containerd.services.images.v1.ImageCreate…).
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR } from '../proto-dir.js';

export type ImageEventTopic = '/images/create' | '/images/update' | '/images/delete';
export const IMAGE_EVENT_TOPICS: readonly ImageEventTopic[] = ['/images/create', '/images/update', '/images/delete'];

export interface ContainerdEvent {
  namespace: string;
  topic: string;
  /** The image name, for image events. */
  imageName?: string;
  time?: Date;
}

const MESSAGE_FOR_TOPIC: Record<ImageEventTopic, string> = {
  '/images/create': 'containerd.services.images.v1.ImageCreate',
  '/images/update': 'containerd.services.images.v1.ImageUpdate',
  '/images/delete': 'containerd.services.images.v1.ImageDelete',
};

let eventTypes: protobuf.Root | undefined;
function types(): protobuf.Root {
  eventTypes ??= protobuf.loadSync(join(PROTO_DIR, 'containerd/events/image.proto'));
  return eventTypes;
}

interface RawEnvelope {
  namespace?: unknown;
  topic?: unknown;
  timestamp?: { seconds?: unknown; nanos?: unknown } | null;
  // grpc-js keeps google.protobuf.Any's own field name (type_url) whatever the case option says.
  event?: { typeUrl?: unknown; type_url?: unknown; value?: unknown } | null;
}

/** The event in an envelope as grpc-js hands it over; undefined for an envelope that is not one. */
export function decodeEvent(untrustedEnvelope: unknown): ContainerdEvent | undefined {
  const e = untrustedEnvelope as RawEnvelope | null;
  if (!e || typeof e.namespace !== 'string' || typeof e.topic !== 'string') return undefined;
  const event: ContainerdEvent = { namespace: e.namespace, topic: e.topic };
  const seconds = Number(e.timestamp?.seconds ?? NaN);
  if (Number.isFinite(seconds)) event.time = new Date(seconds * 1000 + Math.floor(Number(e.timestamp?.nanos ?? 0) / 1e6));
  const expected = MESSAGE_FOR_TOPIC[e.topic as ImageEventTopic];
  const any = e.event;
  const typeUrl = any?.type_url ?? any?.typeUrl;
  if (expected === undefined || !any || typeof typeUrl !== 'string' || !(any.value instanceof Uint8Array)) return event;
  // The type URL is the message's full name, with or without a "type.googleapis.com/" style prefix.
  const typeName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  if (typeName !== expected) return event;
  try {
    const message = types().lookupType(expected).decode(any.value) as unknown as { name?: unknown };
    if (typeof message.name === 'string') event.imageName = message.name;
  } catch {
    /* a payload that does not decode carries no name; the caller ignores it */
  }
  return event;
}
