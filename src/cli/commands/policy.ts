/** `signet policy check|explain|test|schema|push|status`: the policy a node enforces, checked, explained and pushed for a fleet. */
import { basename } from 'node:path';
import { SignetError } from '../../errors.js';
import { explain, formatExplanation } from '../../policy/explain.js';
import { keyFileProblems } from '../../policy/key-files.js';
import { loadPolicyDir, PolicyLoadError, formatProblem, readPolicyFiles } from '../../policy/load.js';
import { openSigner } from '../../keys/open-signer.js';
import { buildPolicyArtifact, MAX_POLICY_LAYER_BYTES, policyLayerOf, POLICY_ARTIFACT_TYPE, readPolicyTar } from '../../policy-source/artifact.js';
import { RegistryClient } from '../../registry/client.js';
import { MEDIA_TYPES } from '../../registry/types.js';
import { cosignSignatureTag, parseSignatureManifest } from '../../formats/cosign.js';
import { signImageCosign } from '../../signing/cosign-sign.js';
import type { Policy } from '../../policy/types.js';
import { policySchemaText } from '../../policy/schema.js';
import { formatReference, parseReference, repositoryName } from '../../registry/reference.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { insecureRegistries, policyDir, registrySettings, type RegistryOptions } from './common.js';
import { UsageError, type CommandIo } from './io.js';
import { verifyCommand, type VerifyOptions } from './verify.js';
import type { OutputFormat } from '../option-values.js';
import { userAgent } from '../../version.js';

export interface PolicyCheckOptions {
  output: OutputFormat;
}

export interface PolicyExplainOptions {
  policyDir?: string;
  output: OutputFormat;
}

export type PolicyTestOptions = VerifyOptions;

export interface PolicyPushOptions extends RegistryOptions {
  /** pkcs11:… URI or a PEM PKCS#8 private key file. */
  key: string;
  pkcs11Module?: string;
  output: OutputFormat;
}

export interface PolicyStatusOptions extends RegistryOptions {
  output: OutputFormat;
}

export function policySchemaCommand(io: CommandIo): Promise<number> {
  io.stdout.write(policySchemaText());
  return Promise.resolve(0);
}

/** `signet policy test IMAGE`: the explanation (as text), then the verification with each step shown. */
export async function policyTestCommand(image: string, options: PolicyTestOptions, io: CommandIo): Promise<number> {
  const code = await policyExplainCommand(image, { ...(options.policyDir !== undefined ? { policyDir: options.policyDir } : {}), output: 'text' }, io);
  if (code !== 0) return code;
  io.stdout.write('\nverification:\n');
  return verifyCommand(image, options, io);
}

/** `signet policy check [DIR]`: the directory loaded as signetd loads it, and every key file it names read. */
export async function policyCheckCommand(dirArgument: string | undefined, options: PolicyCheckOptions, io: CommandIo): Promise<number> {
  const output = options.output;
  const dir = dirArgument ?? policyDir({});
  try {
    const p = await loadPolicyDir(dir);
    // signetd would load this policy and then fail on each key whose file it cannot read: say so now.
    const keyProblems = await keyFileProblems(p);
    if (keyProblems.length > 0) {
      if (output === 'json') io.stdout.write(`${printableJson({ ok: false, problems: keyProblems }, 2)}\n`);
      else
        io.stdout.write(
          `${keyProblems.map((problem) => printable(formatProblem(problem), LIMITS.reason)).join('\n')}\n${keyProblems.length} problem(s): signetd would load this policy, and refuse every image that needs these keys\n`,
        );
      return 1;
    }
    if (output === 'json')
      io.stdout.write(
        `${printableJson({ ok: true, generation: p.generation, files: p.files, keys: Object.keys(p.keys).length, scopes: Object.keys(p.scopes).length }, 2)}\n`,
      );
    else
      io.stdout.write(
        `ok: ${p.files.length} file(s), ${Object.keys(p.keys).length} key(s), ${Object.keys(p.scopes).length} scope(s), generation ${p.generation}\n`,
      );
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    if (output === 'json') io.stdout.write(`${printableJson({ ok: false, problems: err.problems }, 2)}\n`);
    else
      io.stdout.write(
        `${err.problems.map((problem) => printable(formatProblem(problem), LIMITS.reason)).join('\n')}\n${err.problems.length} problem(s); signetd would keep its last good policy\n`,
      );
    return 1;
  }
}

/** `signet policy explain IMAGE`: which scope applies and why, from the policy alone. */
export async function policyExplainCommand(image: string, options: PolicyExplainOptions, io: CommandIo): Promise<number> {
  const output = options.output;
  const policy = await loadPolicyDir(policyDir(options)).catch((err: unknown) => {
    throw err instanceof PolicyLoadError
      ? new SignetError(
          err.code,
          `the policy does not load (run signet policy check): ${err.problems.length} problem(s), first: ${formatProblem(err.problems[0]!)}`,
        )
      : err;
  });
  const e = explain(policy, parseReference(image));
  io.stdout.write(output === 'json' ? `${printableJson(e, 2)}\n` : formatExplanation(e));
  return 0;
}

/** The problems of a policy that does not load, as `check` prints them; exit 1. */
function printProblems(err: PolicyLoadError, output: 'text' | 'json', io: CommandIo, what: string): number {
  if (output === 'json') io.stdout.write(`${printableJson({ ok: false, problems: err.problems }, 2)}\n`);
  else
    io.stdout.write(
      `${err.problems.map((problem) => printable(formatProblem(problem), LIMITS.reason)).join('\n')}\n${err.problems.length} problem(s); ${what}\n`,
    );
  return 1;
}

/**
 * `signet policy push DIR REF --key KEYREF`: the directory validated as signetd validates it, packed
 * as one deterministic tar layer (same files, same digest), pushed by digest, signed (cosign simple
 * signing), and only then tagged: a node that sees the new tag finds its signature already there.
 */
export async function policyPushCommand(dir: string, refText: string, values: PolicyPushOptions, io: CommandIo): Promise<number> {
  const output = values.output;
  const ref = parseReference(refText);
  if (ref.tag === undefined || ref.digest !== undefined)
    throw new UsageError(
      `REF needs a tag and no digest (nodes poll a tag, e.g. registry.example.com/security/node-policy:prod), got ${printable(refText, LIMITS.name)}`,
    );
  let policy: Policy;
  try {
    policy = await loadPolicyDir(dir);
  } catch (err) {
    if (err instanceof PolicyLoadError) return printProblems(err, output, io, 'nothing was pushed');
    throw err;
  }
  const files = await readPolicyFiles(dir);
  const artifact = buildPolicyArtifact(files.map((f) => ({ name: basename(f.path), bytes: Buffer.from(f.text, 'utf8') })));
  if (artifact.layer.length > MAX_POLICY_LAYER_BYTES)
    throw new SignetError('POLICY_INVALID', `the policy artifact would be ${artifact.layer.length} bytes, more than nodes accept (${MAX_POLICY_LAYER_BYTES})`);
  // The key first: a wrong key or PIN fails before anything changes in the registry.
  const signer = await openSigner(values.key, values.pkcs11Module !== undefined ? { pkcs11Module: values.pkcs11Module } : {});
  try {
    const client = new RegistryClient({ insecureRegistries: insecureRegistries(values), ...registrySettings(values), userAgent: userAgent('signet-cli') });
    const repo = { registry: ref.registry, repository: ref.repository };
    await client.pushBlob(repo, artifact.config);
    await client.pushBlob(repo, artifact.layer);
    await client.pushManifest(repo, artifact.digest, artifact.manifest, MEDIA_TYPES.ociManifest);
    const signed = await signImageCosign(client, repo, artifact.digest, signer, { dockerReference: repositoryName(ref) });
    const digest = await client.pushManifest(repo, ref.tag, artifact.manifest, MEDIA_TYPES.ociManifest);
    if (digest !== artifact.digest) throw new SignetError('REGISTRY_PROTOCOL', `the registry stored the manifest as ${digest}, not ${artifact.digest}`);
    const result = {
      ref: formatReference(ref),
      digest,
      files: files.map((f) => basename(f.path)),
      generation: policy.generation,
      key: { fingerprint: signer.fingerprint, algorithm: signer.algorithm },
      signatures: signed.layers,
    };
    if (output === 'json') io.stdout.write(`${printableJson(result, 2)}\n`);
    else {
      io.stderr.write(
        `pushed ${printable(result.ref, LIMITS.name)} (${files.length} file(s)), signed by ${signer.fingerprint} (${signer.algorithm}; ${signed.layers} signature(s) on it)\n`,
      );
      io.stdout.write(`${digest}\n`);
    }
    return 0;
  } finally {
    await signer.close?.();
  }
}

/** `signet policy status REF`: the digest REF points to now, whether it is a signet policy artifact, its files and signatures. */
export async function policyStatusCommand(refText: string, values: PolicyStatusOptions, io: CommandIo): Promise<number> {
  const output = values.output;
  const ref = parseReference(refText);
  const client = new RegistryClient({ insecureRegistries: insecureRegistries(values), ...registrySettings(values), userAgent: userAgent('signet-cli') });
  const repo = { registry: ref.registry, repository: ref.repository };
  const descriptor = await client.resolve(repo, ref.digest ?? ref.tag ?? 'latest');
  const where = `${repositoryName(ref)}@${descriptor.digest}`;
  let files: string[] = [];
  let problem = '';
  try {
    const manifest = await client.getManifest(repo, descriptor.digest);
    const layer = policyLayerOf(manifest.bytes, where);
    files = readPolicyTar(await client.getBlob(repo, layer.digest, { maxBytes: MAX_POLICY_LAYER_BYTES }), where).map((f) => f.name);
  } catch (err) {
    if (!(err instanceof SignetError)) throw err;
    problem = err.message;
  }
  const sig = await client.tryGetManifest(repo, cosignSignatureTag(descriptor.digest), { accept: [MEDIA_TYPES.ociManifest] });
  let signatures = 0;
  if (sig) {
    try {
      signatures = parseSignatureManifest(sig.bytes).length;
    } catch {
      signatures = 0;
    }
  }
  const result = {
    ref: formatReference(ref),
    digest: descriptor.digest,
    artifactType: problem ? '' : POLICY_ARTIFACT_TYPE,
    files,
    signatures,
    ...(problem ? { problem } : {}),
  };
  if (output === 'json') io.stdout.write(`${printableJson(result, 2)}\n`);
  else {
    io.stdout.write(
      [
        `${printable(result.ref, LIMITS.name)}  ${descriptor.digest}`,
        problem
          ? `  NOT A SIGNET POLICY ARTIFACT: ${printable(problem, LIMITS.reason)}`
          : `  policy artifact, ${files.length} file(s): ${files.map((f) => printable(f, LIMITS.name)).join(', ')}`,
        `  ${signatures} cosign signature(s) at ${cosignSignatureTag(descriptor.digest)} (signetd verifies them with policySource.keys before reading the artifact)`,
      ].join('\n') + '\n',
    );
  }
  return problem ? 1 : 0;
}
