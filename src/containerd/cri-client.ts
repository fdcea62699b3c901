/**
 * A small client for the Kubernetes CRI image service (runtime.v1.ImageService) on containerd's
 * socket: pull an image as kubelet does, look at it, remove it. Only what `signet doctor --probe`
 * needs, described in proto/cri/runtime/v1/api.proto. CRI keeps its images in containerd's `k8s.io`
 * namespace and needs no namespace header.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SignetError } from '../errors.js';
import { PROTO_DIR } from '../proto-dir.js';

/** The containerd namespace CRI stores its images in. */
export const CRI_NAMESPACE = 'k8s.io';

export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
}

/** A failed CRI call: `grpcCode` and `details` are containerd's own (the details carry a verifier's reason). */
export class CriCallError extends SignetError {
  constructor(
    readonly method: string,
    readonly grpcCode: number,
    readonly details: string,
    address: string,
  ) {
    const unavailable = grpcCode === grpc.status.UNAVAILABLE || grpcCode === grpc.status.DEADLINE_EXCEEDED;
    super(unavailable ? 'CONTAINERD_UNAVAILABLE' : 'CONTAINERD_ERROR', `CRI ${method} on ${address}: ${grpc.status[grpcCode] ?? grpcCode}: ${details}`);
  }
}

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type Unary<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: Callback<Res>) => void;

let imageServiceCtor: grpc.ServiceClientConstructor | undefined;
function imageService(): grpc.ServiceClientConstructor {
  if (!imageServiceCtor) {
    const def = protoLoader.loadSync('cri/runtime/v1/api.proto', {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [PROTO_DIR],
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { ImageService: grpc.ServiceClientConstructor } } };
    imageServiceCtor = pkg.runtime.v1.ImageService;
  }
  return imageServiceCtor;
}

interface RawImage {
  id?: string;
  repoTags?: string[];
  repoDigests?: string[];
  size?: number;
}

export class CriImageClient {
  private readonly client: grpc.Client;

  constructor(
    readonly address: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.client = new (imageService())(`unix://${address}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 16 << 20 });
  }

  private call<Req, Res>(method: string, request: Req, timeoutMs = this.timeoutMs): Promise<Res> {
    const fn = (this.client as unknown as Record<string, Unary<Req, Res>>)[method]!.bind(this.client);
    return new Promise((resolve, reject) => {
      fn(request, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) =>
        err ? reject(new CriCallError(method, err.code, err.details || err.message, this.address)) : resolve(res),
      );
    });
  }

  /** PullImage as kubelet sends it (no credentials, no sandbox config); resolves with the image id. */
  async pullImage(image: string, timeoutMs = 60_000): Promise<string> {
    const res = await this.call<object, { imageRef: string }>('PullImage', { image: { image } }, timeoutMs);
    return res.imageRef;
  }

  /** The image as CRI knows it, or undefined when the node does not have it. */
  async imageStatus(image: string): Promise<CriImage | undefined> {
    const res = await this.call<object, { image?: RawImage | null }>('ImageStatus', { image: { image }, verbose: false });
    const raw = res.image;
    if (!raw || !raw.id) return undefined;
    return { id: raw.id, repoTags: raw.repoTags ?? [], repoDigests: raw.repoDigests ?? [], size: Number(raw.size ?? 0) };
  }

  /** RemoveImage (by reference or id); removing an image the node does not have is not an error. */
  async removeImage(image: string): Promise<void> {
    await this.call<object, object>('RemoveImage', { image: { image } });
  }

  close(): void {
    this.client.close();
  }
}
