/**
 * The NRI messages signetd exchanges, from proto/nri/api.proto (only the fields used), as plain
 * objects with snake_case names as in the .proto.
 */
import type protobuf from 'protobufjs';
import { loadOwnProtos, strictBytes } from './ttrpc.js';

export const NRI_PACKAGE = 'nri.pkg.api.v1alpha1';
export const PLUGIN_SERVICE = `${NRI_PACKAGE}.Plugin`;
export const RUNTIME_SERVICE = `${NRI_PACKAGE}.Runtime`;

/** NRI's Event enum values that signetd names. */
export const NriEvent = { RUN_POD_SANDBOX: 1, CREATE_CONTAINER: 4, LAST: 12 } as const;
/** The bit of `event` in ConfigureResponse.events. */
export const eventBit = (event: number): number => 1 << (event - 1);

/** CRI annotations on a container: the image reference CRI resolved for it and for its pod sandbox. */
export const IMAGE_NAME_ANNOTATION = 'io.kubernetes.cri.image-name';
export const SANDBOX_IMAGE_NAME_ANNOTATION = 'io.kubernetes.cri.podsandbox.image-name';

export interface PodSandbox {
  id: string;
  name: string;
  uid: string;
  namespace: string;
  annotations: Record<string, string>;
}

export interface Container {
  id: string;
  pod_sandbox_id: string;
  name: string;
  annotations: Record<string, string>;
}

export interface ConfigureRequest {
  config: string;
  runtime_name: string;
  runtime_version: string;
  registration_timeout: number;
  request_timeout: number;
}

export interface SynchronizeRequest {
  pods: PodSandbox[];
  containers: Container[];
  more: boolean;
}

export interface CreateContainerRequest {
  pod: PodSandbox | null;
  container: Container | null;
}

export interface StateChangeEvent {
  event: number;
  pod: PodSandbox | null;
  container: Container | null;
}

type Name =
  | 'Empty'
  | 'RegisterPluginRequest'
  | 'ConfigureRequest'
  | 'ConfigureResponse'
  | 'SynchronizeRequest'
  | 'SynchronizeResponse'
  | 'CreateContainerRequest'
  | 'CreateContainerResponse'
  | 'StateChangeEvent'
  | 'PodSandbox'
  | 'Container';

let root: protobuf.Root | undefined;
const cache = new Map<Name, protobuf.Type>();

export function nriType(name: Name): protobuf.Type {
  let t = cache.get(name);
  if (!t) {
    root ??= loadOwnProtos(['nri/api.proto']);
    t = root.lookupType(`${NRI_PACKAGE}.${name}`);
    cache.set(name, t);
  }
  return t;
}

export function encodeNri(name: Name, value: object): Uint8Array {
  const t = nriType(name);
  return t.encode(t.fromObject(value)).finish();
}

/** Throws (a protobufjs error) when `bytes` are not a `name`. */
export function decodeNri<T>(name: Name, bytes: Uint8Array): T {
  const t = nriType(name);
  return t.toObject(t.decode(strictBytes(bytes)), { longs: Number, enums: Number, defaults: true, arrays: true, objects: true }) as T;
}
