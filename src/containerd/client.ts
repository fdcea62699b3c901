/**
 * A small client for containerd's own gRPC API: version, plugins, namespaces, image records and the
 * event stream. The messages are described in proto/containerd/ (only the fields signet uses).
 * Every call names its namespace in the `containerd-namespace` header, as containerd requires.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SignetError } from '../errors.js';
import { PROTO_DIR } from '../proto-dir.js';
import { decodeEvent, type ContainerdEvent } from './events.js';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

const PROTO_FILES = [
  'containerd/services/images/v1/images.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/services/version/v1/version.proto',
  'containerd/services/introspection/v1/introspection.proto',
  'containerd/services/namespaces/v1/namespace.proto',
  'containerd/services/containers/v1/containers.proto',
];

export interface ContainerdDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ContainerdImage {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  target: ContainerdDescriptor;
}

export interface ContainerdPlugin {
  type: string;
  id: string;
  /** Why the plugin did not load (empty when it did). */
  initError: string;
  exports: Record<string, string>;
}

export interface EventSubscription {
  close(): void;
}

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type Unary<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: Callback<Res>) => void;

interface RawDescriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
}
interface RawImage {
  name?: string;
  labels?: Record<string, string>;
  target?: RawDescriptor | null;
}

let packageRoot: grpc.GrpcObject | undefined;
function root(): grpc.GrpcObject {
  packageRoot ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_FILES, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] }),
  );
  return packageRoot;
}

function ctor(path: string): grpc.ServiceClientConstructor {
  let node: unknown = root();
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

function toImage(namespace: string, raw: RawImage | undefined | null): ContainerdImage | undefined {
  if (!raw || typeof raw.name !== 'string' || !raw.target || typeof raw.target.digest !== 'string') return undefined;
  return {
    namespace,
    name: raw.name,
    labels: raw.labels ?? {},
    target: { mediaType: raw.target.mediaType ?? '', digest: raw.target.digest, size: Number(raw.target.size ?? 0) },
  };
}

export class ContainerdClient {
  private readonly images: grpc.Client;
  private readonly events: grpc.Client;
  private readonly versionService: grpc.Client;
  private readonly introspection: grpc.Client;
  private readonly namespacesService: grpc.Client;
  private readonly containers: grpc.Client;

  constructor(
    readonly address: string = DEFAULT_CONTAINERD_ADDRESS,
    private readonly timeoutMs = 10_000,
  ) {
    const target = `unix://${address}`;
    const creds = grpc.credentials.createInsecure();
    // One channel for every service: grpc-js shares subchannels between clients with equal options.
    const options = { 'grpc.max_receive_message_length': 64 << 20 };
    this.images = new (ctor('containerd.services.images.v1.Images'))(target, creds, options);
    this.events = new (ctor('containerd.services.events.v1.Events'))(target, creds, options);
    this.versionService = new (ctor('containerd.services.version.v1.Version'))(target, creds, options);
    this.introspection = new (ctor('containerd.services.introspection.v1.Introspection'))(target, creds, options);
    this.namespacesService = new (ctor('containerd.services.namespaces.v1.Namespaces'))(target, creds, options);
    this.containers = new (ctor('containerd.services.containers.v1.Containers'))(target, creds, options);
  }

  private call<Req, Res>(client: grpc.Client, method: string, request: Req, namespace?: string): Promise<Res> {
    const metadata = new grpc.Metadata();
    if (namespace !== undefined) metadata.set('containerd-namespace', namespace);
    const fn = (client as unknown as Record<string, Unary<Req, Res>>)[method]!.bind(client);
    return new Promise((resolve, reject) => {
      fn(request, metadata, { deadline: new Date(Date.now() + this.timeoutMs) }, (err, res) => (err ? reject(this.wrap(err, method)) : resolve(res)));
    });
  }

  private wrap(err: grpc.ServiceError, method: string): SignetError {
    if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
      return new SignetError('CONTAINERD_UNAVAILABLE', `cannot reach containerd at ${this.address} (${method}): ${err.details || err.message}`, { cause: err });
    }
    return new SignetError('CONTAINERD_ERROR', `containerd ${method}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`, { cause: err });
  }

  async version(): Promise<{ version: string; revision: string }> {
    const res = await this.call<object, { version: string; revision: string }>(this.versionService, 'Version', {});
    return { version: res.version, revision: res.revision };
  }

  async plugins(filters: string[] = []): Promise<ContainerdPlugin[]> {
    const res = await this.call<
      object,
      { plugins: Array<{ type: string; id: string; exports?: Record<string, string>; initErr?: { message?: string } | null }> }
    >(this.introspection, 'Plugins', { filters });
    return res.plugins.map((p) => ({ type: p.type, id: p.id, initError: p.initErr?.message ?? '', exports: p.exports ?? {} }));
  }

  async namespaces(): Promise<string[]> {
    const res = await this.call<object, { namespaces: Array<{ name: string }> }>(this.namespacesService, 'List', {});
    return res.namespaces.map((n) => n.name);
  }

  async listImages(namespace: string, filters: string[] = []): Promise<ContainerdImage[]> {
    const res = await this.call<object, { images: RawImage[] }>(this.images, 'List', { filters }, namespace);
    return res.images.map((i) => toImage(namespace, i)).filter((i): i is ContainerdImage => i !== undefined);
  }

  /** The image record, or undefined when there is none (it was deleted meanwhile). */
  async getImage(namespace: string, name: string): Promise<ContainerdImage | undefined> {
    try {
      const res = await this.call<object, { image?: RawImage | null }>(this.images, 'Get', { name }, namespace);
      return toImage(namespace, res.image);
    } catch (err) {
      if ((err as SignetError).cause && ((err as SignetError).cause as grpc.ServiceError).code === grpc.status.NOT_FOUND) return undefined;
      throw err;
    }
  }

  /** The image name a container record was created from, or undefined when there is no such container. */
  async containerImage(namespace: string, id: string): Promise<string | undefined> {
    try {
      const res = await this.call<object, { container?: { image?: string } | null }>(this.containers, 'Get', { id }, namespace);
      return res.container?.image || undefined;
    } catch (err) {
      if ((err as SignetError).cause && ((err as SignetError).cause as grpc.ServiceError).code === grpc.status.NOT_FOUND) return undefined;
      throw err;
    }
  }

  /**
   * Delete an image record, only if it still points at `target` (a record re-pointed meanwhile is not
   * ours to delete). Returns false when there was no such record.
   */
  async deleteImage(namespace: string, name: string, target?: ContainerdDescriptor): Promise<boolean> {
    try {
      await this.call<object, object>(this.images, 'Delete', { name, sync: false, ...(target ? { target } : {}) }, namespace);
      return true;
    } catch (err) {
      const code = ((err as SignetError).cause as grpc.ServiceError | undefined)?.code;
      if (code === grpc.status.NOT_FOUND || code === grpc.status.FAILED_PRECONDITION) return false;
      throw err;
    }
  }

  /**
   * Follow the event stream. `onEvent` gets every event matching `filters`; `onEnd` is called once when
   * the stream ends or fails (containerd restarted, socket gone): the caller decides when to resubscribe.
   */
  subscribe(filters: string[], onEvent: (event: ContainerdEvent) => void, onEnd: (err?: SignetError) => void): EventSubscription {
    const stream = (this.events as unknown as { Subscribe(req: object): grpc.ClientReadableStream<unknown> }).Subscribe({ filters });
    let ended = false;
    const end = (err?: SignetError): void => {
      if (ended) return;
      ended = true;
      onEnd(err);
    };
    stream.on('data', (envelope: unknown) => {
      const event = decodeEvent(envelope);
      if (event) onEvent(event);
    });
    stream.on('error', (err: grpc.ServiceError) => end(err.code === grpc.status.CANCELLED ? undefined : this.wrap(err, 'Subscribe')));
    stream.on('end', () => end());
    return {
      close: () => {
        ended = true;
        stream.cancel();
      },
    };
  }

  close(): void {
    for (const c of [this.images, this.events, this.versionService, this.introspection, this.namespacesService, this.containers]) c.close();
  }
}
