/**
 * npm run demo: the main job end to end on this machine. A local docker-registry, an image signed
 * with a fresh key, signetd with a policy, and signet-verifier invoked exactly as containerd invokes
 * it for a signed, an unsigned and a tampered image: verdicts, reasons and audit lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../src/registry/client.js';
import { signImageCosign } from '../src/signing/cosign-sign.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { pushImage } from '../test/helpers/images.js';
import { makeTestKey } from '../test/helpers/keys.js';
import { startRegistry } from '../test/helpers/registry.js';
import { runVerifier, socketFor } from '../test/helpers/verifier.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (process.stdout.isTTY ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (process.stdout.isTTY ? `\x1b[31m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`== ${s}`)}`);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'signet-demo-'));
  step('1. a local OCI registry (Debian docker-registry on 127.0.0.1)');
  const registry = await startRegistry();
  const host = registry.host;
  console.log(`registry at http://${host} (storage ${registry.storageDir})`);
  const client = new RegistryClient({ insecureRegistries: [host] });
  const repo = { registry: host, repository: 'demo/app' };
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    step('2. three images: one signed with a fresh key, one unsigned, one changed after signing');
    const key = makeTestKey('ecdsa-p256');
    console.log(`fresh ECDSA P-256 key ${key.signer.fingerprint}`);
    const signed = await pushImage(client, repo, 'signed');
    const sig = await signImageCosign(client, repo, signed.digest, key.signer, { dockerReference: `${host}/demo/app` });
    console.log(`${host}/demo/app:signed    ${signed.digest}  signed -> ${sig.signatureTag}`);
    const unsigned = await pushImage(client, repo, 'unsigned');
    console.log(`${host}/demo/app:unsigned  ${unsigned.digest}  no signature`);
    // The "tampered" image: new content under a tag, with the signature of the original copied next to it.
    const tampered = await pushImage(client, repo, 'tampered');
    const sigManifest = await client.getManifest(repo, sig.signatureTag);
    await client.pushManifest(repo, `${tampered.digest.replace(':', '-')}.sig`, sigManifest.bytes, sigManifest.mediaType);
    console.log(`${host}/demo/app:tampered  ${tampered.digest}  content changed, old signature copied beside it`);

    step('3. signetd with a trust policy');
    const policy = [
      'apiVersion: signet/v1',
      'keys:',
      `  release: { file: ${join(work, 'release.pub')} }`,
      'default: { action: reject }',
      'scopes:',
      `  ${host}/demo:`,
      '    action: verify',
      '    signatures: { keys: [release], threshold: 1, identity: { type: matchRepository } }',
      '',
    ].join('\n');
    key.writePublic(join(work, 'release.pub'));
    daemon = await startDaemon({ insecureRegistries: [host], policy });
    console.log(policy.replace(/^/gm, '  | '));
    console.log(`signetd listening on ${daemon.socket} (gRPC) and ${socketFor('sh', daemon.socket)} (the verifier's HTTP)`);

    step(
      '4. containerd asks: signet-verifier -name … -digest … -stdin-media-type application/vnd.oci.descriptor.v1+json (the sh + curl verifier signet install puts in bin_dir)',
    );
    for (const [tag, img] of [
      ['signed', signed],
      ['unsigned', unsigned],
      ['tampered', tampered],
    ] as const) {
      const name = `${host}/demo/app:${tag}`;
      const descriptor = { mediaType: img.mediaType, digest: img.digest, size: img.size };
      const run = await runVerifier({ kind: 'sh', socket: socketFor('sh', daemon.socket), name, descriptor });
      console.log(
        `\n$ signet-verifier -name ${name} -digest ${img.digest.slice(0, 19)}… -stdin-media-type application/vnd.oci.descriptor.v1+json <<< '${JSON.stringify({ ...descriptor, digest: `${img.digest.slice(0, 19)}…` })}'`,
      );
      console.log(`${run.code === 0 ? green('ALLOW') : red('REJECT')} exit ${run.code}  (${run.ms} ms)\n  ${run.stdout}`);
    }

    step('5. the audit log (one JSON line per decision)');
    await new Promise((r) => setTimeout(r, 300));
    for (const line of daemon.audit()) {
      const sigs = (line['signatures'] as Array<Record<string, unknown>>).map((s) => `${s['key'] || '-'}:${s['valid'] ? 'valid' : s['code']}`).join(',');
      console.log(
        `  ${line['time']} ${String(line['decision']).padEnd(6)} ${line['image']} scope=${line['scope']} sigs=[${sigs}] ${line['durationMs']}ms gen=${String(line['policyGeneration']).slice(0, 19)}…`,
      );
    }
  } finally {
    await daemon?.stop();
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
  console.log('\ndemo done: signed accepted, unsigned and tampered rejected.');
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
