/**
 * signetd as an NRI plugin: it dials containerd's NRI socket, registers (Runtime.RegisterPlugin on
 * mux connection 2), answers Configure with the events it wants, Synchronize with no updates, and
 * then each CreateContainer (and RunPodSandbox) with an empty adjustment or an error status. An error
 * makes containerd refuse the container: CRI returns it to the caller as
 * `failed to get NRI adjustment for container: … desc = <our message>` (or `NRI RunPodSandbox failed`).
 *
 * NRI fails open — with no plugin connected, or one that answers after containerd's
 * plugin_request_timeout, containerd creates the container — so the connection is re-established as
 * soon as the socket is back (backoff 100 ms doubling up to 500 ms; one log line per outage) and the
 * decision itself is bounded by the caller (see creation.ts).
 */
import { connect, type Socket } from 'node:net';
import type { Logger } from '../daemon/logger.js';
import { describeError } from '../errors.js';
import {
  decodeNri,
  encodeNri,
  eventBit,
  NriEvent,
  PLUGIN_SERVICE,
  RUNTIME_SERVICE,
  type ConfigureRequest,
  type CreateContainerRequest,
  type PodSandbox,
  type StateChangeEvent,
  type SynchronizeRequest,
} from './messages.js';
import { MuxProtocolError, MuxReader, muxFrames, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from './mux.js';
import { TtrpcPeer, type CallInfo, type Handler } from './peer.js';
import { Code, TtrpcError } from './ttrpc.js';

export const DEFAULT_NRI_SOCKET = '/var/run/nri/nri.sock';
export const PLUGIN_NAME = 'signet';

/** What the plugin asks of signetd: a refusal reason, or undefined to allow. */
export interface CreationHandlers {
  /** `deadlineMs`: how long the answer may take, already bounded by the caller's timeout. */
  createContainer(request: CreateContainerRequest, deadlineMs: number): Promise<string | undefined>;
  runPodSandbox?(pod: PodSandbox, deadlineMs: number): Promise<string | undefined>;
  /** Started and stopped with the plugin (the handlers' own watches). */
  start?(): void;
  stop?(): void | Promise<void>;
}

export interface NriPluginOptions {
  socket: string;
  /** Plugin index, two digits: containerd calls plugins in ascending index order. */
  index: string;
  name?: string;
  /** Upper bound for one creation decision (ms); never later than the deadline containerd sends, less a margin. */
  timeoutMs: number;
  registerTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface NriStatus {
  socket: string;
  index: string;
  /** The bound on one creation decision (ms). */
  timeoutMs: number;
  /** Registered and synchronized: containerd consults signetd for every creation. */
  connected: boolean;
  runtime: string;
  /** RFC 3339 time of the last registration. */
  since: string;
  lastError: string;
  registrations: number;
  /** containerd's plugin_request_timeout as it announced it (ms; 0 when it did not, as 1.7 does not). */
  runtimeRequestTimeoutMs: number;
  /** Frames and requests the runtime sent that were malformed, unknown or oversized. */
  protocolErrors: number;
}

export class NriPlugin {
  private socket: Socket | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  /** Start of the current outage (not registered), for the once-per-outage log line. */
  private outageSince: number | undefined = Date.now();
  private outageLogged = false;
  private readonly state = { connected: false, runtime: '', since: '', lastError: '', registrations: 0, runtimeRequestTimeoutMs: 0, protocolErrors: 0 };
  private readonly registeredListeners = new Set<() => void>();

  constructor(
    private readonly options: NriPluginOptions,
    private readonly handlers: CreationHandlers,
    private readonly log: Logger,
  ) {
    this.backoffMs = options.minBackoffMs ?? 100;
  }

  start(): void {
    this.handlers.start?.();
    this.dial();
  }

  status(): NriStatus {
    return { socket: this.options.socket, index: this.options.index, timeoutMs: this.options.timeoutMs, ...this.state };
  }

  /** Called each time the plugin is registered and synchronized (tests, readiness). */
  onRegistered(listener: () => void): () => void {
    this.registeredListeners.add(listener);
    return () => this.registeredListeners.delete(listener);
  }

  private get events(): number {
    return eventBit(NriEvent.CREATE_CONTAINER) | (this.handlers.runPodSandbox ? eventBit(NriEvent.RUN_POD_SANDBOX) : 0);
  }

  /**
   * The bound for one answer: the configured timeout, but never later than what the runtime allows
   * (its deadline for this request, else its announced plugin_request_timeout) less a margin of
   * 300 ms, or of a quarter for short deadlines, for the answer to travel back.
   */
  private deadline(call: CallInfo): number {
    const runtimeMs = call.timeoutNano > 0 ? call.timeoutNano / 1e6 : this.state.runtimeRequestTimeoutMs;
    const runtimeBound = runtimeMs - Math.min(300, runtimeMs / 4);
    return Math.max(1, Math.floor(runtimeMs > 0 ? Math.min(this.options.timeoutMs, runtimeBound) : this.options.timeoutMs));
  }

  private dial(): void {
    if (this.stopped) return;
    const sock = connect(this.options.socket);
    this.socket = sock;
    let reason: string | undefined;
    const reader = new MuxReader();
    const write = (connId: number) => (parts: Buffer[]) => {
      if (!sock.destroyed && sock.writable) sock.write(Buffer.concat(muxFrames(connId, parts)));
    };
    const issue = (conn: string) => (what: string) => {
      this.state.protocolErrors++;
      this.log.warn('NRI: unexpected message from the runtime', { connection: conn, issue: what });
    };
    // Each method: decode (a payload that is not the method's message is the runtime's mistake:
    // INVALID_ARGUMENT), then act. A failure while acting on a creation is a refusal (fail closed).
    const method = <T>(
      name: string,
      message: Parameters<typeof decodeNri>[0],
      act: (req: T, call: CallInfo) => Uint8Array | Promise<Uint8Array>,
    ): [string, Handler] => [
      `${PLUGIN_SERVICE}/${name}`,
      async (payload, call) => {
        let req: T;
        try {
          req = decodeNri<T>(message, payload);
        } catch (err) {
          issue('plugin')(`${name}: malformed request: ${describeError(err)}`);
          throw new TtrpcError(Code.INVALID_ARGUMENT, `malformed ${name} request: ${describeError(err)}`);
        }
        try {
          return await act(req, call);
        } catch (err) {
          if (err instanceof TtrpcError) throw err;
          this.log.error('NRI: request failed', { method: name, error: describeError(err) });
          throw new TtrpcError(Code.PERMISSION_DENIED, `signet: ${name} failed, refused (fail closed): ${describeError(err)}`);
        }
      },
    ];
    const handlers = new Map<string, Handler>([
      method<ConfigureRequest>('Configure', 'ConfigureRequest', (req) => this.configure(req)),
      method<SynchronizeRequest>('Synchronize', 'SynchronizeRequest', (req) => this.synchronize(req)),
      method<object>('Shutdown', 'Empty', () => {
        this.log.info('NRI: the runtime is shutting down');
        return encodeNri('Empty', {});
      }),
      method<CreateContainerRequest>('CreateContainer', 'CreateContainerRequest', (req, call) => this.createContainer(req, call)),
      method<StateChangeEvent>('StateChange', 'StateChangeEvent', (req, call) => this.stateChange(req, call)),
    ]);
    const pluginPeer = new TtrpcPeer(write(PLUGIN_SERVICE_CONN), handlers, issue('plugin'));
    const runtimePeer = new TtrpcPeer(write(RUNTIME_SERVICE_CONN), new Map(), issue('runtime'));
    let unknownConnLogged = false;

    sock.on('connect', () => {
      this.log.debug('NRI: connected, registering', { socket: this.options.socket });
      runtimePeer
        .call(
          RUNTIME_SERVICE,
          'RegisterPlugin',
          encodeNri('RegisterPluginRequest', { plugin_name: this.options.name ?? PLUGIN_NAME, plugin_idx: this.options.index }),
          this.options.registerTimeoutMs ?? 5000,
        )
        .catch((err: unknown) => {
          reason = `registration refused: ${describeError(err)}`;
          sock.destroy();
        });
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        const frames = reader.push(chunk);
        for (const f of frames) {
          if (f.connId === PLUGIN_SERVICE_CONN) pluginPeer.receive(f.payload);
          else if (f.connId === RUNTIME_SERVICE_CONN) runtimePeer.receive(f.payload);
          else {
            this.state.protocolErrors++;
            if (!unknownConnLogged) this.log.warn('NRI: dropped frames for an unknown mux connection', { connId: f.connId, bytes: f.payload.length });
            unknownConnLogged = true;
          }
        }
      } catch (err) {
        // A frame over the size limit (the stream cannot be resynchronised), or a bug of ours: never
        // an exception out of the socket's handler; drop the connection and register again.
        this.state.protocolErrors++;
        reason = `${err instanceof MuxProtocolError ? 'protocol error' : 'internal error'}: ${describeError(err)}`;
        this.log.error('NRI: cannot read the connection; reconnecting', { error: describeError(err) });
        sock.destroy();
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      reason ??= err.code ? `${err.code} ${this.options.socket}` : err.message;
    });
    sock.on('close', () => {
      const closed = new Error(reason ?? 'the runtime closed the connection');
      pluginPeer.close(closed);
      runtimePeer.close(closed);
      if (this.socket === sock) this.socket = undefined;
      this.disconnected(closed.message);
    });
  }

  private disconnected(reason: string): void {
    const wasConnected = this.state.connected;
    this.state.connected = false;
    this.state.lastError = reason;
    if (this.stopped) return;
    if (wasConnected) {
      this.outageSince = Date.now();
      this.outageLogged = false;
      this.backoffMs = this.options.minBackoffMs ?? 100;
    }
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.log.warn(
        'NRI: not registered with containerd; containers created meanwhile are not checked at creation (NRI fails open). Retrying until the socket is back',
        { socket: this.options.socket, error: reason },
      );
    } else {
      this.log.debug('NRI: still not registered', { error: reason, retryInMs: this.backoffMs });
    }
    this.retryTimer = setTimeout(() => this.dial(), this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 500);
  }

  private configure(req: ConfigureRequest): Uint8Array {
    this.state.runtime = `${req.runtime_name} ${req.runtime_version}`.trim();
    this.state.runtimeRequestTimeoutMs = Number(req.request_timeout) || 0;
    if (this.state.runtimeRequestTimeoutMs > 0 && this.options.timeoutMs >= this.state.runtimeRequestTimeoutMs) {
      this.log.warn("NRI: the decision bound is not below containerd's plugin_request_timeout; decisions end 300 ms (or a quarter) before it instead", {
        timeoutMs: this.options.timeoutMs,
        runtimeRequestTimeoutMs: this.state.runtimeRequestTimeoutMs,
      });
    }
    return encodeNri('ConfigureResponse', { events: this.events });
  }

  private synchronize(req: SynchronizeRequest): Uint8Array {
    this.log.debug('NRI: synchronize', { pods: req.pods.length, containers: req.containers.length, more: req.more });
    if (!req.more) {
      // containerd adds the plugin to its list once this answer is in.
      const downMs = this.outageSince !== undefined ? Date.now() - this.outageSince : 0;
      Object.assign(this.state, { connected: true, since: new Date().toISOString(), lastError: '', registrations: this.state.registrations + 1 });
      this.outageSince = undefined;
      this.outageLogged = false;
      this.backoffMs = this.options.minBackoffMs ?? 100;
      this.log.info('NRI: registered with the runtime; every container creation is decided', {
        runtime: this.state.runtime,
        socket: this.options.socket,
        index: this.options.index,
        events: this.events,
        ...(this.state.registrations > 1 ? { afterOutageMs: downMs } : {}),
      });
      setImmediate(() => {
        for (const l of this.registeredListeners) l();
      });
    }
    // A split synchronization (NRI 0.7+) expects `more` echoed back, with no updates.
    return encodeNri('SynchronizeResponse', { more: req.more });
  }

  private async createContainer(req: CreateContainerRequest, call: CallInfo): Promise<Uint8Array> {
    const refusal = await this.handlers.createContainer(req, this.deadline(call));
    if (refusal !== undefined) throw new TtrpcError(Code.PERMISSION_DENIED, refusal);
    return encodeNri('CreateContainerResponse', {});
  }

  private async stateChange(event: StateChangeEvent, call: CallInfo): Promise<Uint8Array> {
    if (event.event === NriEvent.RUN_POD_SANDBOX && this.handlers.runPodSandbox && event.pod) {
      const refusal = await this.handlers.runPodSandbox(event.pod, this.deadline(call));
      if (refusal !== undefined) throw new TtrpcError(Code.PERMISSION_DENIED, refusal);
    }
    return encodeNri('Empty', {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.handlers.stop?.();
    const sock = this.socket;
    if (sock && !sock.destroyed) {
      await new Promise<void>((resolve) => {
        sock.once('close', () => resolve());
        sock.destroy();
      });
    }
  }
}
