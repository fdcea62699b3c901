/**
 * The gRPC face of signetd on a unix socket: signet.v1.ImageVerifier and grpc.health.v1.Health.
 * Handlers never throw: a malformed request gets INVALID_ARGUMENT, everything else a Judgement.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describeError, SignetError } from '../errors.js';
import { isDigest } from '../registry/reference.js';
import type { Decision } from '../engine/decision.js';
import { printableBase, printableDecision } from '../util/printable-decision.js';
import type { Daemon } from './daemon.js';
import { listenPrivately } from './private-socket.js';

export { PROTO_DIR } from '../proto-dir.js';
import { PROTO_DIR } from '../proto-dir.js';

const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

export function loadProtos(): grpc.GrpcObject {
  const definition = protoLoader.loadSync(['signet/v1/verifier.proto', 'grpc/health/v1/health.proto'], LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition);
}

type ServiceClientCtor = grpc.ServiceClientConstructor;
function service(root: grpc.GrpcObject, path: string): ServiceClientCtor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as ServiceClientCtor;
}

export function verifierServiceClient(root: grpc.GrpcObject): ServiceClientCtor {
  return service(root, 'signet.v1.ImageVerifier');
}

interface RawRequest {
  name?: unknown;
  descriptor?: { mediaType?: unknown; digest?: unknown; size?: unknown } | null;
}

/** The Judgement of a decision, every string escaped and bounded: containerd prints the reason to users. */
export function judgement(untrusted: Decision): Record<string, unknown> {
  const d = printableDecision(untrusted);
  return { ...stableJudgement(d), durationMs: d.durationMs, cached: d.cached === true };
}

/** A printable decision's Judgement without duration_ms and cached: what every answer of one verdict shares. */
function stableJudgement(d: Decision): Record<string, unknown> {
  return {
    ok: d.ok,
    reason: d.reason,
    decision: d.decision,
    scope: d.scope,
    signatures: d.signatures.map((s) => ({ format: s.format, source: s.source, key: s.key, valid: s.valid, reason: s.reason, code: s.code ?? '' })),
    policyGeneration: d.policyGeneration,
    image: d.image,
    digest: d.digest,
    code: d.code ?? '',
    warnings: d.warnings,
  };
}

/** Judgement field numbers appended to a cached verdict's bytes (proto/signet/v1/verifier.proto). */
const DURATION_MS_DOUBLE_TAG = (7 << 3) | 1;
const CACHED_BOOL_TAG = (12 << 3) | 0;

/**
 * A cached verdict is answered thousands of times a second, and the answers differ only in duration_ms
 * and cached: the rest of its Judgement is encoded once per verdict and the two fields appended (protobuf
 * fields may come in any order; a test decodes both forms alike).
 */
const encodedStable = new WeakMap<Decision, Buffer>();
export function cachedJudgementBytes(untrusted: Decision, serialize: (value: unknown) => Buffer): Buffer {
  const d = printableDecision(untrusted);
  const base = printableBase(d);
  let stable = encodedStable.get(base);
  if (stable === undefined) encodedStable.set(base, (stable = serialize(stableJudgement(base))));
  const tail = Buffer.allocUnsafe(11);
  tail[0] = DURATION_MS_DOUBLE_TAG;
  tail.writeDoubleLE(d.durationMs, 1);
  tail[9] = CACHED_BOOL_TAG;
  tail[10] = d.cached === true ? 1 : 0;
  return Buffer.concat([stable, tail]);
}

function validate(req: RawRequest): { name: string; descriptor: { mediaType: string; digest: string; size: number } } {
  if (typeof req.name !== 'string' || req.name.length === 0) throw new SignetError('INVALID_ARGUMENT', 'name is required');
  const d = req.descriptor;
  if (!d || typeof d.digest !== 'string' || d.digest.length === 0) throw new SignetError('INVALID_ARGUMENT', 'descriptor.digest is required');
  if (!isDigest(d.digest)) throw new SignetError('INVALID_ARGUMENT', 'descriptor.digest is not a sha256 or sha512 digest');
  if (typeof d.size === 'number' && (d.size < 0 || !Number.isSafeInteger(d.size))) throw new SignetError('INVALID_ARGUMENT', 'descriptor.size is not a size');
  return {
    name: req.name,
    descriptor: { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: typeof d.size === 'number' ? d.size : 0 },
  };
}

export class GrpcServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 1 << 20 });

  constructor(private readonly daemon: Daemon) {
    const root = loadProtos();
    // VerifyImage answers are objects, or for cached verdicts their bytes already (cachedJudgementBytes).
    const definition = service(root, 'signet.v1.ImageVerifier').service;
    const verifyImage = definition['VerifyImage']!;
    const serialize = (value: unknown): Buffer => verifyImage.responseSerialize(value);
    const verifierService: grpc.ServiceDefinition = {
      ...definition,
      VerifyImage: { ...verifyImage, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value)) },
    };
    this.server.addService(verifierService, {
      VerifyImage: (call: grpc.ServerUnaryCall<RawRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        let request;
        try {
          request = validate(call.request);
        } catch (err) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: describeError(err) });
          return;
        }
        const cached = this.daemon.verifyImage.cached(request);
        if (cached !== undefined) {
          callback(null, cachedJudgementBytes(cached, serialize));
          return;
        }
        const gone = new AbortController();
        // grpc-js also says 'cancelled' once a call has ended: listen only while the answer is pending.
        const onCancelled = (): void => gone.abort();
        call.once('cancelled', onCancelled);
        const deadline = call.getDeadline();
        const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
        void this.daemon.verifyImage
          .answer(request, { signal: gone.signal, ...(Number.isFinite(deadlineMs) ? { deadline: deadlineMs } : {}) })
          .then((answer) => {
            call.removeListener('cancelled', onCancelled);
            switch (answer.kind) {
              case 'decision':
                return callback(null, judgement(answer.decision));
              case 'overloaded':
                return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: answer.reason });
              case 'abandoned':
                return callback({ code: grpc.status.CANCELLED, details: answer.reason });
              case 'internal':
                return callback(null, { ok: false, decision: 'reject', reason: answer.reason, code: 'INTERNAL' });
            }
          });
      },
      Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        callback(null, this.daemon.status());
      },
    });
    const health = (): string => (this.daemon.serving ? 'SERVING' : 'NOT_SERVING');
    const known = (svc: string): boolean => svc === '' || svc === 'signet.v1.ImageVerifier';
    this.server.addService(service(root, 'grpc.health.v1.Health').service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (!known(call.request.service)) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        else callback(null, { status: health() });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
        let last = '';
        const send = (): void => {
          const status = known(call.request.service) ? health() : 'SERVICE_UNKNOWN';
          if (status !== last) call.write({ status });
          last = status;
        };
        send();
        const off = this.daemon.onStatusChange(send);
        call.on('cancelled', off);
        call.on('close', off);
      },
    });
  }

  /** Bind the unix socket, mode 0600 (private-socket.ts). */
  listen(socketPath: string): Promise<void> {
    return listenPrivately(
      socketPath,
      () =>
        new Promise<void>((resolve, reject) => {
          this.server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
            err ? reject(new SignetError('CONFIG_INVALID', `cannot listen on ${socketPath}: ${err.message}`)) : resolve(),
          );
        }),
    );
  }

  async close(graceMs = 3000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
