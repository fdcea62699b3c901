/**
 * npm run bench. Machines are shared and noisy, so every figure is printed next to a baseline
 * measured in the same run, as a ratio:
 *  - signet-verifier wall time per call against a warm signetd  vs  a bare `node -e 0` start;
 *  - signetd VerifyImage latency for a signed image             vs  one manifest GET from the same registry;
 *  - decisions per second under concurrent calls                vs  manifest GETs per second, same concurrency;
 *  - NRI CreateContainer round trip to signetd, image already decided  vs  a bare ttrpc round trip on the
 *    same NRI connection (StateChange for an event signetd does not act on).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../src/daemon/grpc-server.js';
import { RegistryClient } from '../src/registry/client.js';
import { signImageCosign } from '../src/signing/cosign-sign.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { pushImage } from '../test/helpers/images.js';
import { makeTestKey } from '../test/helpers/keys.js';
import { startRegistry } from '../test/helpers/registry.js';
import { runVerifier } from '../test/helpers/verifier.js';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { Pkcs11KeyProvider } from '../src/keys/pkcs11/provider.js';
import { Pkcs11Signer } from '../src/keys/pkcs11/signer.js';
import { closeAllModules } from '../src/keys/pkcs11/module.js';
import { createToken, SOFTHSM_MODULE } from '../test/helpers/softhsm.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { RuntimeSide } from '../src/nri/runtime-side.js';
import { startContainerd, writeRegistryHosts } from '../test/helpers/containerd.js';
import { pushRunnableImage } from '../test/helpers/runnable-image.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 40);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
const TOTAL = Number(process.env['BENCH_TOTAL'] ?? 800);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;
const fmt = (n: number) => n.toFixed(2);

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function rate(total: number, concurrency: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) await fn();
  }));
  return total / ((performance.now() - t) / 1000);
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const host = registry.host;
  const client = new RegistryClient({ insecureRegistries: [host] });
  const key = makeTestKey('ecdsa-p256');
  const repo = { registry: host, repository: 'bench/app' };
  const img = await pushImage(client, repo, 'v1');
  await signImageCosign(client, repo, img.digest, key.signer, { dockerReference: `${host}/bench/app` });
  const daemon = await startDaemon({
    insecureRegistries: [host],
    extraConfig: 'logLevel: warn',
  });
  key.writePublic(join(daemon.dir, 'release.pub'));
  daemon.writePolicy('policy.yaml', {
    apiVersion: 'signet/v1',
    keys: { release: { file: join(daemon.dir, 'release.pub') } },
    scopes: { [`${host}/bench`]: { action: 'verify', signatures: { keys: ['release'] } } },
  });
  await new Promise((r) => setTimeout(r, 1000));
  const descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
  const name = `${host}/bench/app:v1`;
  try {
    const first = await runVerifier({ socket: daemon.socket, name, descriptor });
    if (first.code !== 0) throw new Error(`bench image not accepted: ${first.stdout}`);

    // 1. verifier start-up + call, interleaved with bare node starts so both see the same noise.
    const nodeMs: number[] = [];
    const verifierMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      nodeMs.push(await timeIt(() => spawnSync(process.execPath, ['-e', '0'])));
      verifierMs.push(await timeIt(() => runVerifier({ socket: daemon.socket, name, descriptor })));
    }
    const ratio = median(verifierMs) / median(nodeMs);
    console.log(`verifier call (warm daemon, signed image)  median ${fmt(median(verifierMs))} ms   bare node -e 0 median ${fmt(median(nodeMs))} ms   ratio ${fmt(ratio)}x   (target <= 2x)`);

    // 2. daemon-side latency against the local registry.
    const Verifier = verifierServiceClient(loadProtos());
    const c = new Verifier(`unix://${daemon.socket}`, grpc.credentials.createInsecure()) as any;
    const call = () => new Promise<void>((res, rej) => c.VerifyImage({ name, descriptor }, (e: Error | null, r: { ok: boolean }) => (e ? rej(e) : r.ok ? res() : rej(new Error('rejected')))));
    const getManifest = () => client.getManifest(repo, img.digest);
    for (let i = 0; i < 20; i++) {
      await call();
      await getManifest();
    }
    const verifyLat: number[] = [];
    const manifestLat: number[] = [];
    for (let i = 0; i < RUNS * 2; i++) {
      verifyLat.push(await timeIt(call));
      manifestLat.push(await timeIt(getManifest));
    }
    console.log(`VerifyImage latency  median ${fmt(median(verifyLat))} ms  p95 ${fmt(p95(verifyLat))} ms   one manifest GET median ${fmt(median(manifestLat))} ms   ratio ${fmt(median(verifyLat) / median(manifestLat))}x   (cosign .sig + payload, referrers listing + tag fallback)`);

    // 3. throughput under concurrency.
    const baseline = await rate(TOTAL, CONCURRENCY, getManifest);
    const decisions = await rate(TOTAL, CONCURRENCY, call);
    console.log(`decisions/s at concurrency ${CONCURRENCY}: ${fmt(decisions)}   manifest GETs/s same concurrency: ${fmt(baseline)}   ratio ${fmt(decisions / baseline)}`);
    c.close();
  } finally {
    await daemon.stop();
    await registry.stop();
  }
  await benchPkcs11();
  await benchNri();
}

/**
 * signetd as an NRI plugin, with this process playing containerd's NRI side (so that both requests can
 * be timed from the runtime's end) and a real containerd 2.x answering signetd's image lookups.
 */
async function benchNri(): Promise<void> {
  const registry = await startRegistry();
  const host = registry.host;
  const client = new RegistryClient({ insecureRegistries: [host] });
  const key = makeTestKey('ecdsa-p256');
  const repo = { registry: host, repository: 'bench/nri' };
  const img = await pushRunnableImage(client, repo, { tag: 'v1' });
  await signImageCosign(client, repo, img.digest, key.signer, { dockerReference: `${host}/bench/nri` });
  const ref = `${host}/bench/nri:v1`;
  const dir = mkdtempSync(join(tmpdir(), 'bench-nri-'));
  const certs = writeRegistryHosts(join(dir, 'certs'), host);
  const ctd = await startContainerd({ line: '2.x', registryConfigPath: certs, nri: false });
  const runtime = new RuntimeSide(join(dir, 'nri.sock'), { runtimeName: 'containerd', runtimeVersion: ctd.version, requestTimeoutMs: 2000 });
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    const pulled = await ctd.ctr(['images', 'pull', '--plain-http', ref], { namespace: 'k8s.io' });
    if (pulled.code !== 0) throw new Error(`ctr pull: ${pulled.stderr}`);
    await runtime.listen();
    const registered = runtime.nextRegistration();
    daemon = await startDaemon({ insecureRegistries: [host], extraConfig: ['logLevel: warn', `containerd: { address: ${ctd.address} }`, `nri: { socket: ${runtime.socketPath} }`].join('\n') });
    key.writePublic(join(daemon.dir, 'release.pub'));
    daemon.writePolicy('policy.yaml', {
      apiVersion: 'signet/v1',
      keys: { release: { file: join(daemon.dir, 'release.pub') } },
      scopes: { [`${host}/bench`]: { action: 'verify', signatures: { keys: ['release'] } } },
    });
    await registered;
    await new Promise((r) => setTimeout(r, 1000));
    const pod = { id: 'p', name: 'bench', uid: 'u', namespace: 'bench', annotations: { 'io.kubernetes.cri.sandbox-name': 'bench' } };
    const container = { id: 'c', pod_sandbox_id: 'p', name: 'app', annotations: { 'io.kubernetes.cri.image-name': ref, 'io.kubernetes.cri.container-type': 'container' } };
    const create = () => runtime.createContainer({ pod, container });
    const bare = () => runtime.stateChange({ event: 7 /* POST_START_CONTAINER: not subscribed, answered without a decision */, pod, container });
    await create(); // decided once (registry round trips); from here on the image is already decided
    for (let i = 0; i < 50; i++) {
      await create();
      await bare();
    }
    const createLat: number[] = [];
    const bareLat: number[] = [];
    for (let i = 0; i < RUNS * 10; i++) {
      createLat.push(await timeIt(create));
      bareLat.push(await timeIt(bare));
    }
    console.log(`NRI CreateContainer round trip (image already decided)  median ${fmt(median(createLat))} ms  p95 ${fmt(p95(createLat))} ms   bare ttrpc round trip on the same connection median ${fmt(median(bareLat))} ms   ratio ${fmt(median(createLat) / median(bareLat))}x   (target <= 2x)`);
  } finally {
    await daemon?.stop();
    await runtime.close();
    await ctd.stop();
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Verifications per second with a SoftHSM2 key, both modes, next to node:crypto with the same key; signatures per second on the token. */
async function benchPkcs11(): Promise<void> {
  const token = createToken('bench');
  token.tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'bench', '--id', '01']);
  const uri = `${token.uri};object=bench;type=public`;
  const provider = new Pkcs11KeyProvider({ defaultModule: SOFTHSM_MODULE });
  const cached = await provider.load('bench', { pkcs11: uri });
  const onToken = await provider.load('bench', { pkcs11: uri, verifyOn: 'token' });
  const signer = await Pkcs11Signer.open(`${token.uri};object=bench`, { pin: token.pin });
  const data = Buffer.from('{"critical":{"identity":{"docker-reference":"example.com/app"}}}');
  const sig = await signer.sign(data, 'sha256');
  const pub = createPublicKey(signer.publicKeyPem());
  const n = Number(process.env['BENCH_PKCS11_OPS'] ?? 3000);
  const check = (ok: boolean) => {
    if (!ok) throw new Error('a valid signature did not verify');
  };
  let i = 0;
  const nodeRate = await rate(n, CONCURRENCY, async () => check(cryptoVerify('sha256', data, pub, sig)));
  const cachedRate = await rate(n, CONCURRENCY, async () => check(await cached.verify(data, sig, 'sha256')));
  const tokenRate = await rate(n, CONCURRENCY, async () => check(await onToken.verify(data, sig, 'sha256')));
  const signRate = await rate(Math.max(200, n / 5), CONCURRENCY, async () => {
    i++;
    await signer.sign(data, 'sha256');
  });
  console.log(`PKCS#11 P-256 verifications/s: cached key ${fmt(cachedRate)} (${fmt(cachedRate / nodeRate)}x node:crypto), on the token ${fmt(tokenRate)} (${fmt(tokenRate / nodeRate)}x), node:crypto baseline ${fmt(nodeRate)}`);
  console.log(`PKCS#11 P-256 signatures/s on the token: ${fmt(signRate)} (${fmt(signRate / nodeRate)}x the node:crypto verify baseline)`);
  await provider.close();
  closeAllModules();
  token.delete();
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
