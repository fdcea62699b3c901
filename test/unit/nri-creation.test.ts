/**
 * The decision at container creation (src/nri/creation.ts), with containerd's image records and the
 * engine as fakes: names resolved to digests in k8s.io, the refusal text, fail closed on every
 * unknown (no name, no record, containerd down, no decision in time), the sandbox image, and the
 * verdict memory (per name, digest and policy generation; nothing undecided kept).
 */
import assert from 'node:assert/strict';
import winston from 'winston';
import type { ContainerdImage } from '../../src/containerd/client.js';
import type { Decision, VerifyRequest } from '../../src/engine/decision.js';
import { SignetError } from '../../src/errors.js';
import { CreationGate, refusalMessage, type CreateAuditContext, type CreationGateDeps } from '../../src/nri/creation.js';
import type { CreateContainerRequest } from '../../src/nri/messages.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const log = winston.createLogger({ silent: true });

function decision(req: VerifyRequest, ok: boolean, reason: string, generation: string, extra: Partial<Decision> = {}): Decision {
  return {
    ok,
    decision: ok ? 'accept' : 'reject',
    reason,
    name: req.name,
    image: req.name,
    digest: req.descriptor.digest,
    mediaType: req.descriptor.mediaType,
    scope: 'reg.example/prod',
    signatures: [],
    warnings: [],
    policyGeneration: generation,
    durationMs: 3,
    ...extra,
  };
}

interface Fake {
  deps: CreationGateDeps;
  records: Map<string, ContainerdImage>;
  decided: string[];
  audit: Array<{ decision: Decision; context: CreateAuditContext }>;
  generation: { value: string };
  verdicts: Map<string, (req: VerifyRequest) => Decision | Promise<Decision>>;
}

function fake(): Fake {
  const records = new Map<string, ContainerdImage>();
  const decided: string[] = [];
  const audit: Fake['audit'] = [];
  const generation = { value: 'sha256:gen1' };
  const verdicts: Fake['verdicts'] = new Map();
  const add = (name: string, digest: string) =>
    records.set(name, { namespace: 'k8s.io', name, labels: {}, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 500 } });
  add('reg.example/prod/app:v1', D('a'));
  add('reg.example/prod/bad:v1', D('b'));
  add('reg.example/sys/pause:3.10', D('c'));
  add(D('e'), D('a')); // the image ID record of app:v1
  const deps: CreationGateDeps = {
    images: {
      getImage: async (ns, name) => (ns === 'k8s.io' ? records.get(name) : undefined),
      listImages: async (ns, filters = []) =>
        [...records.values()].filter((r) => r.namespace === ns && filters.every((f) => f === `target.digest==${r.target.digest}`)),
    },
    decide: async (req) => {
      decided.push(req.name);
      const v = verdicts.get(req.name);
      if (v) return v(req);
      return req.name.includes('/bad')
        ? decision(
            req,
            false,
            `rejected reg.example/prod/bad@${req.descriptor.digest}: no signatures found; needs a valid signature by release (scope reg.example/prod)`,
            generation.value,
            { code: 'SIGNATURE_NOT_FOUND' },
          )
        : decision(req, true, 'accepted', generation.value);
    },
    policyGeneration: () => generation.value,
    record: (d, context) => void audit.push({ decision: d, context }),
    log,
  };
  return { deps, records, decided, audit, generation, verdicts };
}

function request(image: string | undefined, sandboxImage?: string): CreateContainerRequest {
  return {
    pod: {
      id: 'p-id',
      name: 'web-0',
      uid: 'u',
      namespace: 'shop',
      annotations: sandboxImage ? { 'io.kubernetes.cri.podsandbox.image-name': sandboxImage } : {},
    },
    container: { id: 'c-id', pod_sandbox_id: 'p-id', name: 'app', annotations: image ? { 'io.kubernetes.cri.image-name': image } : {} },
  };
}

describe('NRI creation decisions', () => {
  it('allows a container whose image and sandbox image are accepted, and audits both (event create, pod, container, namespace)', async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1', 'reg.example/sys/pause:3.10'), 1500), undefined);
    assert.deepEqual(f.decided.sort(), ['reg.example/prod/app:v1', 'reg.example/sys/pause:3.10']);
    assert.deepEqual(
      f.audit.map((a) => [a.context.role, a.context.action, a.context.namespace, a.context.pod, a.context.container, a.decision.digest]),
      [
        ['container', 'allowed', 'shop', 'web-0', 'app', D('a')],
        ['sandbox', 'allowed', 'shop', 'web-0', 'app', D('c')],
      ],
    );
    assert.equal(f.audit[0]!.context.event, 'create');
    assert.deepEqual(gate.status(), { decided: 2, refused: 0, timedOut: 0, cached: 0, namesFromMemory: 0, lastRefusal: '' });
  });

  it("refuses with signet: rejected <repository>@<digest>: <the engine's reason>", async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    const refusal = await gate.createContainer(request('reg.example/prod/bad:v1'), 1500);
    assert.equal(refusal, `signet: rejected reg.example/prod/bad@${D('b')}: no signatures found; needs a valid signature by release (scope reg.example/prod)`);
    assert.equal(f.audit[0]!.context.action, 'refused');
    assert.equal(f.audit[0]!.decision.code, 'SIGNATURE_NOT_FOUND');
    assert.equal(gate.status().refused, 1);
    assert.equal(gate.status().lastRefusal, refusal);
  });

  it('names the image by repository and digest even when the engine named it by tag', () => {
    const d = decision(
      { name: 'reg.example/prod/app:v1', descriptor: { mediaType: '', digest: D('a'), size: 1 } },
      false,
      'rejected reg.example/prod/app:v1: scope reg.example/prod rejects all images',
      'g',
    );
    assert.equal(refusalMessage(d, 'container'), `signet: rejected reg.example/prod/app@${D('a')}: scope reg.example/prod rejects all images`);
    assert.equal(
      refusalMessage(d, 'sandbox'),
      `signet: rejected reg.example/prod/app@${D('a')}: scope reg.example/prod rejects all images (the pod sandbox image)`,
    );
  });

  it('refuses a container whose pod sandbox image is refused, saying so', async () => {
    const f = fake();
    f.verdicts.set('reg.example/sys/pause:3.10', (req) =>
      decision(req, false, `rejected reg.example/sys/pause@${req.descriptor.digest}: no signatures found (scope default)`, f.generation.value),
    );
    const refusal = await new CreationGate(f.deps).createContainer(request('reg.example/prod/app:v1', 'reg.example/sys/pause:3.10'), 1500);
    assert.equal(refusal, `signet: rejected reg.example/sys/pause@${D('c')}: no signatures found (scope default) (the pod sandbox image)`);
  });

  it('allows a warn-mode verdict and records it as warn', async () => {
    const f = fake();
    f.verdicts.set('reg.example/prod/app:v1', (req) =>
      decision(req, true, 'warn (scope reg.example/prod is in warn mode, image allowed): would have rejected …', f.generation.value, { decision: 'warn' }),
    );
    assert.equal(await new CreationGate(f.deps).createContainer(request('reg.example/prod/app:v1'), 1500), undefined);
    assert.equal(f.audit[0]!.decision.decision, 'warn');
    assert.equal(f.audit[0]!.context.action, 'allowed');
  });

  it('fails closed when the image name is missing, has no record in k8s.io, or containerd cannot be asked', async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    assert.match(
      (await gate.createContainer(request(undefined), 1500))!,
      /^signet: rejected: the runtime did not say which image the container runs \(no io\.kubernetes\.cri\.image-name annotation\)$/,
    );
    assert.equal(f.audit.at(-1)!.context.code, 'IMAGE_NAME_MISSING');
    assert.equal(
      await gate.createContainer(request('reg.example/prod/gone:v1'), 1500),
      'signet: rejected reg.example/prod/gone:v1: containerd has no image of that name in namespace k8s.io, so its digest is unknown',
    );
    assert.equal(f.audit.at(-1)!.context.code, 'IMAGE_NOT_FOUND');
    f.deps.images.getImage = async () => {
      throw new SignetError('CONTAINERD_UNAVAILABLE', 'cannot reach containerd at /run/containerd/containerd.sock (Get): connect ENOENT');
    };
    assert.match(
      (await gate.createContainer(request('reg.example/prod/app:v1'), 1500))!,
      /^signet: rejected reg\.example\/prod\/app:v1: cannot resolve the image's digest with containerd: CONTAINERD_UNAVAILABLE: cannot reach containerd/,
    );
    assert.equal(f.decided.length, 0, 'nothing was decided without a digest');
    assert.equal(gate.status().refused, 3);
  });

  it('refuses when no decision comes within the bound, saying so, and remembers the late verdict for the retry', async () => {
    const f = fake();
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    f.verdicts.set('reg.example/prod/app:v1', async (req) => {
      await slow;
      return decision(req, true, 'accepted', f.generation.value);
    });
    const gate = new CreationGate(f.deps);
    const started = Date.now();
    const refusal = await gate.createContainer(request('reg.example/prod/app:v1'), 80);
    assert.ok(Date.now() - started < 500);
    assert.match(
      refusal!,
      new RegExp(
        `^signet: rejected reg\\.example/prod/app@${D('a')}: no decision within 80 ms \\(\\d+ ms elapsed\\); containerd would create the container unchecked once its plugin_request_timeout passes, so signet refuses it \\(fail closed\\)$`,
      ),
    );
    assert.equal(f.audit[0]!.decision.code, 'DECISION_TIMEOUT');
    assert.equal(gate.status().timedOut, 1);
    release();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 80), undefined);
    assert.equal(f.audit.at(-1)!.context.cached, true);
  });

  it('remembers verdicts per name, digest and policy generation; a new generation, a moved tag or clear() decides again', async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    const req = request('reg.example/prod/app:v1');
    await gate.createContainer(req, 1500);
    await gate.createContainer(req, 1500);
    assert.equal(f.decided.length, 1);
    assert.equal(gate.status().cached, 1);
    assert.deepEqual(
      f.audit.map((a) => a.context.cached),
      [false, true],
    );
    f.generation.value = 'sha256:gen2';
    await gate.createContainer(req, 1500);
    assert.equal(f.decided.length, 2, 'a verdict of another policy generation is not used');
    f.records.set('reg.example/prod/app:v1', { ...f.records.get('reg.example/prod/app:v1')!, target: { mediaType: '', digest: D('f'), size: 1 } });
    await gate.createContainer(req, 1500);
    assert.equal(f.decided.length, 3, 'the tag now names another digest');
    gate.clear();
    await gate.createContainer(req, 1500);
    assert.equal(f.decided.length, 4);
  });

  it('never remembers a verdict that says "could not check" (registry down, key unavailable)', async () => {
    const f = fake();
    let n = 0;
    f.verdicts.set('reg.example/prod/app:v1', (r) =>
      n++ === 0
        ? decision(r, false, 'rejected x: cannot look up signatures', f.generation.value, { code: 'REGISTRY_UNAVAILABLE' })
        : decision(r, true, 'accepted', f.generation.value),
    );
    const gate = new CreationGate(f.deps);
    assert.match((await gate.createContainer(request('reg.example/prod/app:v1'), 1500))!, /cannot look up signatures/);
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 1500), undefined);
    assert.equal(f.decided.length, 2);
  });

  it("uses the image watcher's verdicts for records in k8s.io only", async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    const watched = decision({ name: 'reg.example/prod/app:v1', descriptor: { mediaType: '', digest: D('a'), size: 1 } }, true, 'accepted', f.generation.value);
    gate.remember({ ...watched, name: 'reg.example/prod/bad:v1', digest: D('b') }, 'default');
    gate.remember(watched, 'k8s.io');
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 1500), undefined);
    assert.match((await gate.createContainer(request('reg.example/prod/bad:v1'), 1500))!, /no signatures found/);
    assert.deepEqual(f.decided, ['reg.example/prod/bad:v1']);
  });

  it('refuses an allowed creation whose audit line cannot be written when auditFailure is reject, and allows it with allow', async () => {
    const f = fake();
    let mode: 'reject' | 'allow' = 'reject';
    f.deps.record = () => false;
    f.deps.auditFailure = () => mode;
    const gate = new CreationGate(f.deps);
    assert.equal(
      await gate.createContainer(request('reg.example/prod/app:v1'), 1500),
      `signet: rejected reg.example/prod/app@${D('a')}: the decision cannot be recorded in the audit log; auditFailure: reject refuses what cannot be audited`,
    );
    mode = 'allow';
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 1500), undefined);
  });

  it('decides an image named by its ID through its named records', async () => {
    const f = fake();
    assert.equal(await new CreationGate(f.deps).createContainer(request(D('e')), 1500), undefined);
    assert.deepEqual(f.decided, ['reg.example/prod/app:v1']);
    const f2 = fake();
    f2.records.set(D('9'), { namespace: 'k8s.io', name: D('9'), labels: {}, target: { mediaType: '', digest: D('8'), size: 1 } });
    assert.match(
      (await new CreationGate(f2.deps).createContainer(request(D('9')), 1500))!,
      /^signet: rejected sha256:9+ \(namespace k8s\.io\): the image has no name the policy can check/,
    );
  });

  it('decides only the container image when the runtime does not name the sandbox image (containerd 1.7), and the sandbox at RunPodSandbox when it does', async () => {
    const f = fake();
    const gate = new CreationGate(f.deps);
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.deepEqual(f.decided, ['reg.example/prod/app:v1']);
    assert.equal(await gate.runPodSandbox({ id: 'p', name: 'web-0', uid: 'u', namespace: 'shop', annotations: {} }, 1500), undefined);
    assert.equal(f.audit.length, 1, 'nothing to decide at RunPodSandbox without the annotation');
    f.verdicts.set('reg.example/sys/pause:3.10', (req) =>
      decision(req, false, `rejected reg.example/sys/pause@${req.descriptor.digest}: no signatures found (scope default)`, f.generation.value),
    );
    const refusal = await gate.runPodSandbox(
      { id: 'p', name: 'web-0', uid: 'u', namespace: 'shop', annotations: { 'io.kubernetes.cri.podsandbox.image-name': 'reg.example/sys/pause:3.10' } },
      1500,
    );
    assert.match(refusal!, /^signet: rejected reg\.example\/sys\/pause@sha256:c+: no signatures found \(scope default\) \(the pod sandbox image\)$/);
    assert.deepEqual([f.audit.at(-1)!.context.role, f.audit.at(-1)!.context.container], ['sandbox', '']);
  });
});

describe("NRI creation decisions: name → digest memory, kept coherent by containerd's image events", () => {
  function watched(f: Fake) {
    let lookups = 0;
    const get = f.deps.images.getImage;
    f.deps.images.getImage = async (ns, name) => {
      lookups++;
      return get(ns, name);
    };
    const subs: Array<{
      filters: string[];
      onEvent: (e: { namespace: string; topic: string; imageName?: string }) => void;
      onEnd: (err?: Error) => void;
      closed: boolean;
    }> = [];
    f.deps.images.subscribe = (filters, onEvent, onEnd) => {
      const sub = { filters, onEvent, onEnd, closed: false };
      subs.push(sub);
      return { close: () => (sub.closed = true) };
    };
    return { lookups: () => lookups, subs };
  }

  it('looks every name up when there is no event stream', async () => {
    const f = fake();
    let lookups = 0;
    const get = f.deps.images.getImage;
    f.deps.images.getImage = async (ns, name) => (lookups++, get(ns, name));
    const gate = new CreationGate(f.deps, { watchGraceMs: 0 });
    gate.start();
    for (let i = 0; i < 3; i++) await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.equal(lookups, 3);
  });

  it('remembers a name while the stream is up, and forgets it on an event for it (a tag moved to an unsigned image)', async () => {
    const f = fake();
    const w = watched(f);
    const gate = new CreationGate(f.deps, { watchGraceMs: 0 });
    gate.start();
    assert.deepEqual(w.subs[0]!.filters, ['namespace=="k8s.io",topic~="^/images/"']);
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.equal(w.lookups(), 1);
    assert.equal(gate.status().namesFromMemory, 1);
    // Someone imports an unsigned image under the same name.
    f.records.set('reg.example/prod/app:v1', { ...f.records.get('reg.example/prod/bad:v1')!, name: 'reg.example/prod/app:v1' });
    f.verdicts.set('reg.example/prod/app:v1', (req) =>
      decision(
        req,
        req.descriptor.digest === D('a'),
        req.descriptor.digest === D('a') ? 'accepted' : `rejected reg.example/prod/app@${req.descriptor.digest}: no signatures found`,
        f.generation.value,
      ),
    );
    w.subs[0]!.onEvent({ namespace: 'default', topic: '/images/update', imageName: 'reg.example/prod/app:v1' });
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 1500), undefined, 'an event of another namespace changes nothing');
    w.subs[0]!.onEvent({ namespace: 'k8s.io', topic: '/images/update', imageName: 'reg.example/prod/app:v1' });
    assert.equal(await gate.createContainer(request('reg.example/prod/app:v1'), 1500), `signet: rejected reg.example/prod/app@${D('b')}: no signatures found`);
    assert.equal(w.lookups(), 2);
    gate.stop();
    assert.equal(w.subs[0]!.closed, true);
  });

  it('does not remember a lookup during which an image event arrived, nor before the stream has been up for the grace period', async () => {
    const f = fake();
    const w = watched(f);
    const get = f.deps.images.getImage;
    let during: (() => void) | undefined;
    f.deps.images.getImage = async (ns, name) => {
      const r = await get(ns, name);
      during?.();
      return r;
    };
    const gate = new CreationGate(f.deps, { watchGraceMs: 0 });
    gate.start();
    during = () => w.subs[0]!.onEvent({ namespace: 'k8s.io', topic: '/images/create', imageName: 'something/else:1' });
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    during = undefined;
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.equal(w.lookups(), 2, 'the first lookup was not remembered, the second was');
    const f2 = fake();
    const w2 = watched(f2);
    const graced = new CreationGate(f2.deps, { watchGraceMs: 60_000 });
    graced.start();
    await graced.createContainer(request('reg.example/prod/app:v1'), 1500);
    await graced.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.equal(w2.lookups(), 2);
    graced.stop();
    gate.stop();
  });

  it('forgets every name when the stream ends, looks names up until it is back, and subscribes again', async () => {
    const f = fake();
    const w = watched(f);
    const gate = new CreationGate(f.deps, { watchGraceMs: 0 });
    gate.start();
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    w.subs[0]!.onEnd(new Error('containerd restarted'));
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    await gate.createContainer(request('reg.example/prod/app:v1'), 1500);
    assert.equal(w.lookups(), 3);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(w.subs.length, 2, 'subscribed again after a second');
    gate.stop();
  });
});
