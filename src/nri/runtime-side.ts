/**
 * The runtime's side of NRI, as containerd plays it (github.com/containerd/nri pkg/adaptation): it
 * listens on the NRI socket, serves Runtime.RegisterPlugin on mux connection 2, then calls
 * Configure, Synchronize and the plugin's event methods on connection 1. For the unit tests of the
 * plugin and for `npm run bench` (a CreateContainer round trip next to a bare ttrpc round trip);
 * signetd itself never uses it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { decodeNri, encodeNri, PLUGIN_SERVICE, RUNTIME_SERVICE } from './messages.js';
import { MuxReader, muxFrames, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN } from './mux.js';
import { TtrpcPeer } from './peer.js';

export interface Registration {
  name: string;
  index: string;
  /** ConfigureResponse.events. */
  events: number;
}

export interface RuntimeSideOptions {
  runtimeName?: string;
  runtimeVersion?: string;
  /** Sent in ConfigureRequest.request_timeout (ms), as NRI 0.7+ does; 0 as 1.7 does. */
  requestTimeoutMs?: number;
  /** Pods and containers sent in Synchronize, split into messages of this many (with `more`). */
  sync?: { pods: object[]; containers: object[]; perMessage?: number };
  /** Deadline of each call to the plugin (ms), also sent as timeout_nano. */
  callTimeoutMs?: number;
}

interface Connection {
  socket: Socket;
  plugin: TtrpcPeer;
  runtime: TtrpcPeer;
}

export class RuntimeSide {
  private server: Server | undefined;
  private conn: Connection | undefined;
  private waiters: Array<(r: Registration) => void> = [];
  registrations: Registration[] = [];
  /** Each SynchronizeResponse.more the plugin answered. */
  syncAnswers: boolean[] = [];

  constructor(
    readonly socketPath: string,
    private readonly options: RuntimeSideOptions = {},
  ) {}

  listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    this.server = createServer((socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.socketPath, () => resolve());
    });
  }

  /** Resolves at the next completed registration (configured and synchronized). */
  nextRegistration(): Promise<Registration> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  get connected(): boolean {
    return this.conn !== undefined && !this.conn.socket.destroyed;
  }

  private accept(socket: Socket): void {
    const reader = new MuxReader();
    const write = (id: number) => (parts: Buffer[]) => {
      if (!socket.destroyed) socket.write(Buffer.concat(muxFrames(id, parts)));
    };
    const plugin = new TtrpcPeer(write(PLUGIN_SERVICE_CONN));
    const conn: Connection = { socket, plugin, runtime: undefined as unknown as TtrpcPeer };
    conn.runtime = new TtrpcPeer(
      write(RUNTIME_SERVICE_CONN),
      new Map([
        [
          `${RUNTIME_SERVICE}/RegisterPlugin`,
          (payload: Buffer) => {
            const req = decodeNri<{ plugin_name: string; plugin_idx: string }>('RegisterPluginRequest', payload);
            setImmediate(() => void this.configure(conn, req.plugin_name, req.plugin_idx).catch(() => socket.destroy()));
            return encodeNri('Empty', {});
          },
        ],
      ]),
    );
    this.conn?.socket.destroy();
    this.conn = conn;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) {
          if (f.connId === PLUGIN_SERVICE_CONN) plugin.receive(f.payload);
          else if (f.connId === RUNTIME_SERVICE_CONN) conn.runtime.receive(f.payload);
        }
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      plugin.close(new Error('closed'));
      conn.runtime.close(new Error('closed'));
      if (this.conn === conn) this.conn = undefined;
    });
  }

  private async configure(conn: Connection, name: string, index: string): Promise<void> {
    const timeout = this.options.callTimeoutMs ?? 2000;
    const configured = decodeNri<{ events: number }>(
      'ConfigureResponse',
      await conn.plugin.call(
        PLUGIN_SERVICE,
        'Configure',
        encodeNri('ConfigureRequest', {
          runtime_name: this.options.runtimeName ?? 'fake-runtime',
          runtime_version: this.options.runtimeVersion ?? '0.0.0',
          request_timeout: this.options.requestTimeoutMs ?? 2000,
          registration_timeout: 5000,
        }),
        timeout,
      ),
    );
    const pods = this.options.sync?.pods ?? [];
    const containers = this.options.sync?.containers ?? [];
    const per = this.options.sync?.perMessage ?? Math.max(1, pods.length + containers.length);
    let p = 0;
    let c = 0;
    for (;;) {
      const podsNow = pods.slice(p, p + per);
      const ctrsNow = containers.slice(c, c + Math.max(0, per - podsNow.length));
      p += podsNow.length;
      c += ctrsNow.length;
      const more = p < pods.length || c < containers.length;
      const answer = decodeNri<{ more: boolean }>(
        'SynchronizeResponse',
        await conn.plugin.call(PLUGIN_SERVICE, 'Synchronize', encodeNri('SynchronizeRequest', { pods: podsNow, containers: ctrsNow, more }), timeout),
      );
      this.syncAnswers.push(answer.more);
      if (!more) break;
    }
    const r = { name, index, events: configured.events };
    this.registrations.push(r);
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w(r);
  }

  private connection(): Connection {
    if (!this.conn) throw new Error('no plugin connected');
    return this.conn;
  }

  /** Call a Plugin method with a raw payload; resolves with the reply's payload, rejects with TtrpcError. */
  call(method: string, payload: Uint8Array, timeoutMs = this.options.callTimeoutMs ?? 2000, service = PLUGIN_SERVICE): Promise<Buffer> {
    return this.connection().plugin.call(service, method, payload, timeoutMs);
  }

  /** CreateContainer as containerd sends it; resolves when allowed, rejects with the plugin's TtrpcError when refused. */
  async createContainer(request: { pod: object; container: object }, timeoutMs?: number): Promise<void> {
    await this.call('CreateContainer', encodeNri('CreateContainerRequest', request), timeoutMs);
  }

  async stateChange(event: { event: number; pod?: object; container?: object }, timeoutMs?: number): Promise<void> {
    await this.call('StateChange', encodeNri('StateChangeEvent', event), timeoutMs);
  }

  /** Bytes straight onto the connection (garbage, hand-made frames). */
  writeRaw(bytes: Buffer): void {
    this.connection().socket.write(bytes);
  }

  /** Drop the plugin's connection, as a restarting runtime does. */
  disconnect(): void {
    this.conn?.socket.destroy();
  }

  async close(): Promise<void> {
    this.disconnect();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
    rmSync(this.socketPath, { force: true });
  }
}
