/**
 * A CRI (runtime.v1) client over containerd's unix socket, as kubelet talks to it: @grpc/grpc-js with
 * the upstream api.proto from Debian's golang-k8s-cri-api-dev (unpacked by scripts/fetch-debian-parts.sh).
 * Every call is promisified and carries a deadline. Field names are camelCase (proto-loader keepCase
 * false), enums are strings, 64-bit integers numbers.
 */
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { requireDebianParts, upstreamProto } from './debian-parts.js';

export const CRI_PROTO = upstreamProto('k8s.io/cri-api/pkg/apis/runtime/v1/api.proto');

/** An image as ListImages/ImageStatus return it. */
export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned?: boolean;
  [k: string]: unknown;
}

/** A gRPC failure: `code` (grpc.status), `details` (the server's message), `message` ("<code> <NAME>: <details>"). */
export type CriError = grpc.ServiceError;

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  logDirectory?: string;
  linux?: Record<string, unknown>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string; [k: string]: unknown };
  command?: string[];
  args?: string[];
  logPath?: string;
  linux?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface CriClient {
  address: string;
  version(): Promise<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;
  /** PullImage; resolves with the image reference (the image id) containerd returns. */
  pullImage(image: string, options?: { sandboxConfig?: PodSandboxConfig; auth?: Record<string, unknown>; deadlineMs?: number }): Promise<string>;
  listImages(): Promise<CriImage[]>;
  /** ImageStatus; `null` when the runtime does not have the image (an empty response). */
  imageStatus(image: string): Promise<CriImage | null>;
  removeImage(image: string): Promise<void>;
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  stopPodSandbox(podSandboxId: string): Promise<void>;
  removePodSandbox(podSandboxId: string): Promise<void>;
  createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  startContainer(containerId: string): Promise<void>;
  stopContainer(containerId: string, timeoutSeconds?: number): Promise<void>;
  removeContainer(containerId: string): Promise<void>;
  containerStatus(containerId: string): Promise<Record<string, unknown>>;
  /** Any other unary method of RuntimeService or ImageService, by its name as in the proto (`ListContainers`). */
  call<T = Record<string, unknown>>(service: 'runtime' | 'image', method: string, request: object, deadlineMs?: number): Promise<T>;
  close(): void;
}

let loaded: { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } | undefined;

function services(): { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } {
  if (loaded) return loaded;
  if (!existsSync(CRI_PROTO)) requireDebianParts();
  const definition = protoLoader.loadSync(CRI_PROTO, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } };
  };
  loaded = { runtime: pkg.runtime.v1.RuntimeService, image: pkg.runtime.v1.ImageService };
  return loaded;
}

/** A client for the CRI services on `address` (containerd's grpc socket path). Default deadline per call: 30 s. */
export function criClient(address: string, options: { deadlineMs?: number } = {}): CriClient {
  const { runtime: Runtime, image: Image } = services();
  const target = `unix://${address}`;
  const creds = grpc.credentials.createInsecure();
  // kubelet's limits: CRI messages can be large (ListImages on a busy node).
  const channelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
  const runtime = new Runtime(target, creds, channelOptions);
  const image = new Image(target, creds, channelOptions);
  const defaultDeadline = options.deadlineMs ?? 30_000;

  const call = <T>(service: 'runtime' | 'image', method: string, request: object, deadlineMs = defaultDeadline): Promise<T> => {
    const client = (service === 'runtime' ? runtime : image) as unknown as Record<string, unknown>;
    const fnName = method.charAt(0).toLowerCase() + method.slice(1);
    const fn = client[method] ?? client[fnName];
    if (typeof fn !== 'function') return Promise.reject(new Error(`CRI ${service} service has no method ${method}`));
    return new Promise<T>((resolve, reject) => {
      (fn as (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: T) => void) => void).call(
        client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  };

  return {
    address,
    version: () => call('runtime', 'Version', { version: 'v1' }),
    async pullImage(img, opts = {}) {
      const req: Record<string, unknown> = { image: { image: img } };
      if (opts.sandboxConfig) req['sandboxConfig'] = opts.sandboxConfig;
      if (opts.auth) req['auth'] = opts.auth;
      const res = await call<{ imageRef: string }>('image', 'PullImage', req, opts.deadlineMs ?? Math.max(defaultDeadline, 60_000));
      return res.imageRef;
    },
    async listImages() {
      return (await call<{ images: CriImage[] }>('image', 'ListImages', {})).images ?? [];
    },
    async imageStatus(img) {
      const res = await call<{ image: CriImage | null }>('image', 'ImageStatus', { image: { image: img }, verbose: false });
      return res.image && res.image.id ? res.image : null;
    },
    async removeImage(img) {
      await call('image', 'RemoveImage', { image: { image: img } });
    },
    async runPodSandbox(config, runtimeHandler = '') {
      return (await call<{ podSandboxId: string }>('runtime', 'RunPodSandbox', { config, runtimeHandler }, Math.max(defaultDeadline, 60_000))).podSandboxId;
    },
    async stopPodSandbox(podSandboxId) {
      await call('runtime', 'StopPodSandbox', { podSandboxId });
    },
    async removePodSandbox(podSandboxId) {
      await call('runtime', 'RemovePodSandbox', { podSandboxId });
    },
    async createContainer(podSandboxId, config, sandboxConfig) {
      return (await call<{ containerId: string }>('runtime', 'CreateContainer', { podSandboxId, config, sandboxConfig })).containerId;
    },
    async startContainer(containerId) {
      await call('runtime', 'StartContainer', { containerId });
    },
    async stopContainer(containerId, timeout = 0) {
      await call('runtime', 'StopContainer', { containerId, timeout });
    },
    async removeContainer(containerId) {
      await call('runtime', 'RemoveContainer', { containerId });
    },
    async containerStatus(containerId) {
      return (await call<{ status: Record<string, unknown> }>('runtime', 'ContainerStatus', { containerId, verbose: false })).status;
    },
    call,
    close() {
      runtime.close();
      image.close();
    },
  };
}

/**
 * A pod sandbox config that runs in this VM: host network (no CNI here) and therefore no hostname,
 * logs under `logDirectory` when given.
 */
export function hostNetworkPod(name: string, options: { namespace?: string; logDirectory?: string } = {}): PodSandboxConfig {
  return {
    metadata: { name, uid: `${name}-uid`, namespace: options.namespace ?? 'signet-test', attempt: 0 },
    ...(options.logDirectory ? { logDirectory: options.logDirectory } : {}),
    linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'POD', ipc: 'POD' } } },
  };
}
