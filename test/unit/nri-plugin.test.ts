/**
 * The NRI plugin (src/nri/plugin.ts) against a fake runtime over a real unix socket, playing
 * containerd's side as NRI's adaptation does (src/nri/runtime-side.ts): registration, configuration,
 * split synchronization, CreateContainer and RunPodSandbox answers, the deadline, garbage and
 * truncated input, unknown connections and methods, and reconnection when the runtime comes back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { encodeNri, eventBit, NriEvent } from '../../src/nri/messages.js';
import { muxHeader, muxFrames } from '../../src/nri/mux.js';
import { NriPlugin, type CreationHandlers } from '../../src/nri/plugin.js';
import { RuntimeSide } from '../../src/nri/runtime-side.js';
import { Code, encodeHeader, MessageType, TtrpcError } from '../../src/nri/ttrpc.js';

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), lines };
}

const pod = { id: 'p1', name: 'web-0', uid: 'u1', namespace: 'shop', annotations: { 'io.kubernetes.cri.podsandbox.image-name': 'reg.example/sys/pause:3.10' } };
const container = (name: string, image: string) => ({ id: `c-${name}`, pod_sandbox_id: 'p1', name, annotations: { 'io.kubernetes.cri.image-name': image } });

describe('NRI plugin (fake runtime over a unix socket)', function () {
  this.timeout(20_000);
  let dir: string;
  let runtime: RuntimeSide;
  let plugin: NriPlugin | undefined;
  let seen: Array<{ image: string; deadline: number; name: string }>;
  let logs: ReturnType<typeof capturingLog>;

  const handlers: CreationHandlers = {
    async createContainer(req, deadline) {
      const image = req.container?.annotations['io.kubernetes.cri.image-name'] ?? '';
      seen.push({ image, deadline, name: req.container?.name ?? '' });
      if (image.includes('slow')) await new Promise((r) => setTimeout(r, 50));
      return image.includes('bad') ? `signet: rejected ${image}@sha256:${'b'.repeat(64)}: no signatures found` : undefined;
    },
    async runPodSandbox(p, deadline) {
      const image = p.annotations['io.kubernetes.cri.podsandbox.image-name'] ?? '';
      seen.push({ image, deadline, name: '' });
      return image.includes('bad') ? `signet: rejected ${image}: no signatures found (the pod sandbox image)` : undefined;
    },
  };

  async function startPlugin(options: Partial<ConstructorParameters<typeof NriPlugin>[0]> = {}): Promise<NriPlugin> {
    const registered = runtime.nextRegistration();
    plugin = new NriPlugin({ socket: runtime.socketPath, index: '10', timeoutMs: 1500, ...options }, handlers, logs.log);
    plugin.start();
    await registered;
    return plugin;
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nri-'));
    runtime = new RuntimeSide(join(dir, 'nri.sock'), { runtimeName: 'containerd', runtimeVersion: '2.1.9', requestTimeoutMs: 2000 });
    await runtime.listen();
    seen = [];
    logs = capturingLog();
  });
  afterEach(async () => {
    await plugin?.stop();
    plugin = undefined;
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers as signet with its index, subscribes to CreateContainer and RunPodSandbox, and reports the runtime', async () => {
    const p = await startPlugin({ index: '07' });
    assert.deepEqual(runtime.registrations, [
      { name: 'signet', index: '07', events: eventBit(NriEvent.CREATE_CONTAINER) | eventBit(NriEvent.RUN_POD_SANDBOX) },
    ]);
    assert.equal(runtime.registrations[0]!.events, 0b1001);
    const s = p.status();
    assert.equal(s.connected, true);
    assert.equal(s.runtime, 'containerd 2.1.9');
    assert.equal(s.runtimeRequestTimeoutMs, 2000);
    assert.equal(s.registrations, 1);
  });

  it('answers a split Synchronize (NRI 0.7+) with `more` echoed and registers after the last part', async () => {
    await runtime.close();
    runtime = new RuntimeSide(join(dir, 'nri.sock'), {
      sync: { pods: [pod, { ...pod, id: 'p2' }, { ...pod, id: 'p3' }], containers: [container('a', 'x'), container('b', 'y')], perMessage: 2 },
    });
    await runtime.listen();
    await startPlugin();
    assert.deepEqual(runtime.syncAnswers, [true, true, false]);
  });

  it("allows with an empty adjustment and refuses with PERMISSION_DENIED carrying signet's reason", async () => {
    await startPlugin();
    await runtime.createContainer({ pod, container: container('app', 'reg.example/prod/app:v1') });
    await assert.rejects(
      runtime.createContainer({ pod, container: container('app', 'reg.example/prod/bad:v1') }),
      (e: TtrpcError) =>
        e.code === Code.PERMISSION_DENIED && e.message === `signet: rejected reg.example/prod/bad:v1@sha256:${'b'.repeat(64)}: no signatures found`,
    );
    await runtime.stateChange({ event: NriEvent.RUN_POD_SANDBOX, pod });
    await assert.rejects(
      runtime.stateChange({
        event: NriEvent.RUN_POD_SANDBOX,
        pod: { ...pod, annotations: { 'io.kubernetes.cri.podsandbox.image-name': 'reg.example/sys/bad:1' } },
      }),
      (e: TtrpcError) => e.code === Code.PERMISSION_DENIED && /the pod sandbox image/.test(e.message),
    );
    // Other state changes are acknowledged without a decision.
    await runtime.stateChange({ event: 6, pod, container: container('app', 'reg.example/prod/bad:v1') });
    assert.deepEqual(
      seen.map((s) => s.image),
      ['reg.example/prod/app:v1', 'reg.example/prod/bad:v1', 'reg.example/sys/pause:3.10', 'reg.example/sys/bad:1'],
    );
  });

  it('bounds each decision by its timeout, and ends it before the deadline the runtime sends (300 ms, or a quarter, ahead)', async () => {
    await startPlugin({ timeoutMs: 1500 });
    await runtime.createContainer({ pod, container: container('a', 'reg.example/prod/app:v1') }, 2000);
    await runtime.createContainer({ pod, container: container('b', 'reg.example/prod/app:v1') }, 1000);
    await runtime.createContainer({ pod, container: container('c', 'reg.example/prod/app:v1') }, 1700);
    await runtime.createContainer({ pod, container: container('d', 'reg.example/prod/app:v1') }, 400);
    assert.equal(seen[0]!.deadline, 1500, "containerd's default 2 s leaves the configured 1.5 s");
    assert.ok(seen[1]!.deadline <= 750 && seen[1]!.deadline > 700, String(seen[1]!.deadline));
    assert.ok(seen[2]!.deadline <= 1400 && seen[2]!.deadline > 1350, String(seen[2]!.deadline));
    assert.ok(seen[3]!.deadline <= 300 && seen[3]!.deadline > 250, String(seen[3]!.deadline));
  });

  it('answers unknown methods with UNIMPLEMENTED and malformed requests with INVALID_ARGUMENT, and keeps serving', async () => {
    await startPlugin();
    await assert.rejects(runtime.call('ValidateContainerAdjustment', new Uint8Array(0)), (e: TtrpcError) => e.code === Code.UNIMPLEMENTED);
    await assert.rejects(
      runtime.call('CreateContainer', Buffer.from([0x0a, 0x7f, 0x01])),
      (e: TtrpcError) => e.code === Code.INVALID_ARGUMENT && /malformed CreateContainer request/.test(e.message),
    );
    await assert.rejects(runtime.call('Configure', new Uint8Array(0), 2000, 'some.Other'), (e: TtrpcError) => e.code === Code.UNIMPLEMENTED);
    await runtime.createContainer({ pod, container: container('after', 'reg.example/prod/app:v1') });
    assert.equal(plugin!.status().connected, true);
    assert.ok(plugin!.status().protocolErrors >= 3);
  });

  it('drops frames for unknown connection IDs, garbage ttrpc messages and stray responses, and keeps serving', async () => {
    await startPlugin();
    runtime.writeRaw(Buffer.concat(muxFrames(0, [Buffer.from('reserved')])));
    runtime.writeRaw(Buffer.concat(muxFrames(9, [Buffer.alloc(100, 0xff)])));
    runtime.writeRaw(Buffer.concat(muxFrames(1, [encodeHeader(5, 99, 0x42, 0), Buffer.from('junk!')])));
    runtime.writeRaw(Buffer.concat(muxFrames(2, [encodeHeader(3, 77, MessageType.Response, 0), Buffer.from('xyz')])));
    runtime.writeRaw(Buffer.concat(muxFrames(1, [encodeHeader(3, 2, MessageType.Request, 0), Buffer.from('xyz')])));
    await runtime.createContainer({ pod, container: container('after', 'reg.example/prod/app:v1') });
    assert.equal(plugin!.status().registrations, 1, 'no reconnection was needed');
    assert.equal(seen.length, 1);
  });

  it('drops the connection on a frame longer than any the runtime sends, and registers again within a second', async () => {
    const p = await startPlugin();
    const again = runtime.nextRegistration();
    const t = Date.now();
    runtime.writeRaw(muxHeader(1, 0x7fffffff));
    await again;
    assert.ok(Date.now() - t < 1000, `${Date.now() - t} ms`);
    assert.equal(p.status().registrations, 2);
    assert.ok(logs.lines.some((l) => l['message'] === 'NRI: cannot read the connection; reconnecting' && /over the \d+-byte limit/.test(String(l['error']))));
    await runtime.createContainer({ pod, container: container('after', 'reg.example/prod/app:v1') });
  });

  it('survives a truncated message and random garbage on the connection, registering again when the runtime drops it', async function () {
    const p = await startPlugin();
    // Half a CreateContainer, then the runtime goes away.
    const body = encodeNri('CreateContainerRequest', { pod, container: container('half', 'reg.example/prod/app:v1') });
    runtime.writeRaw(Buffer.concat(muxFrames(1, [encodeHeader(body.length + 100, 1001, MessageType.Request, 0), Buffer.from(body)])));
    let again = runtime.nextRegistration();
    runtime.disconnect();
    await again;
    for (let i = 0; i < 20; i++) {
      again = runtime.nextRegistration();
      const junk = Buffer.alloc(64 + Math.floor(Math.random() * 512));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(Math.random() * 256);
      junk.writeUInt32BE(1, 0);
      junk.writeUInt32BE(Math.min(junk.length - 8, 1 + (i % 40)), 4);
      runtime.writeRaw(junk);
      await new Promise((r) => setTimeout(r, 10));
      if (!runtime.connected) await again;
    }
    await runtime.createContainer({ pod, container: container('after', 'reg.example/prod/app:v1') });
    assert.ok(p.status().registrations >= 2);
    assert.deepEqual(
      seen.map((s) => s.name),
      ['after'],
      'the truncated request was never decided',
    );
  });

  it('re-registers within a second of the socket returning after the runtime went away, and logs once per outage', async () => {
    const p = await startPlugin();
    await runtime.close();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(p.status().connected, false);
    assert.match(p.status().lastError, /ENOENT|ECONNREFUSED|closed/);
    runtime = new RuntimeSide(join(dir, 'nri.sock'));
    const back = runtime.nextRegistration();
    await runtime.listen();
    const t = Date.now();
    await back;
    assert.ok(Date.now() - t < 1000, `re-registered ${Date.now() - t} ms after the socket returned`);
    const outage = logs.lines.filter((l) => String(l['message']).startsWith('NRI: not registered with containerd'));
    assert.equal(outage.length, 1, 'one warning for the whole outage, not one per attempt');
    assert.ok(logs.lines.some((l) => String(l['message']).startsWith('NRI: registered') && typeof l['afterOutageMs'] === 'number'));
    await runtime.createContainer({ pod, container: container('back', 'reg.example/prod/app:v1') });
    assert.equal(p.status().connected, true);
  });

  it('keeps trying while the socket does not exist yet, and registers when it appears', async () => {
    await runtime.close();
    plugin = new NriPlugin({ socket: join(dir, 'nri.sock'), index: '10', timeoutMs: 1500 }, handlers, logs.log);
    plugin.start();
    await new Promise((r) => setTimeout(r, 700));
    runtime = new RuntimeSide(join(dir, 'nri.sock'));
    const up = runtime.nextRegistration();
    await runtime.listen();
    await up;
    assert.equal(plugin.status().connected, true);
  });

  it('stops cleanly: no reconnection after stop()', async () => {
    const p = await startPlugin();
    await p.stop();
    plugin = undefined;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(runtime.registrations.length, 1);
    assert.equal(runtime.connected, false);
  });
});
