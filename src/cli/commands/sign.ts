/**
 * `signet sign --key KEYREF IMAGE`: sign an image digest with a key that stays in the HSM (or a PEM
 * file), only after the vulnerability gate passes, optionally with a signed scan attestation.
 */
import { readFileSync } from 'node:fs';
import { createVulnAttestation } from '../../attest/vuln.js';
import { SignetError } from '../../errors.js';
import { openSigner } from '../../keys/open-signer.js';
import { RegistryClient } from '../../registry/client.js';
import { parseReference, repositoryName } from '../../registry/reference.js';
import { MEDIA_TYPES } from '../../registry/types.js';
import { evaluateGate, formatBlockingTable, gateFailureMessage, parseIgnoreFile, type GateResult, type MaxSeverity } from '../../scan/gate.js';
import { parseScanReport, type ScanReport } from '../../scan/report.js';
import { appendArtifactLayer } from '../../signing/artifact-manifest.js';
import { signImageCosign } from '../../signing/cosign-sign.js';
import { signImageBundle } from '../../signing/bundle-sign.js';
import { insecureRegistries, registrySettings, type RegistryOptions } from './common.js';
import type { OutputFormat } from '../option-values.js';
import { UsageError, type CommandIo } from './io.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { userAgent } from '../../version.js';

export interface SignOptions extends RegistryOptions {
  /** pkcs11:… URI or a PEM PKCS#8 private key file. */
  key: string;
  format: 'cosign' | 'sigstore-bundle';
  annotation?: string[];
  scanReport?: string;
  maxSeverity?: MaxSeverity;
  ignore?: string[];
  ignoreFile?: string;
  attestScan?: boolean;
  pkcs11Module?: string;
  output: OutputFormat;
}

export async function signCommand(image: string, values: SignOptions, io: CommandIo): Promise<number> {
  if (values.attestScan && values.scanReport === undefined) throw new UsageError('--attest-scan needs --scan-report');
  const { format, output } = values;
  if (format === 'sigstore-bundle' && (values.annotation ?? []).length > 0) throw new UsageError('--annotation applies to the cosign format only');
  const annotations: Record<string, string> = {};
  for (const a of values.annotation ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${a}" is not KEY=VALUE`);
    annotations[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const maxSeverity = values.maxSeverity;
  const ignore = [...(values.ignore ?? [])];
  if (values.ignoreFile !== undefined) ignore.push(...parseIgnoreFile(readText(values.ignoreFile, 'ignore file'), values.ignoreFile));
  // Read and parse the report before touching the registry or the HSM: bad input fails fast.
  const report: ScanReport | undefined =
    values.scanReport !== undefined ? parseScanReport(readText(values.scanReport, 'scan report'), values.scanReport) : undefined;

  const ref = parseReference(image);
  const repo = { registry: ref.registry, repository: ref.repository };
  const repoName = repositoryName(ref);
  const client = new RegistryClient({
    insecureRegistries: insecureRegistries(values),
    ...registrySettings(values),
    userAgent: userAgent('signet-cli'),
  });
  // Resolve once; from here on only the digest is used, so a tag moved meanwhile changes nothing.
  const descriptor = await client.resolve(repo, ref.digest ?? ref.tag!);
  const digest = descriptor.digest;

  let gate: GateResult | undefined;
  if (report !== undefined) {
    const alsoDigests =
      descriptor.mediaType === MEDIA_TYPES.ociIndex || descriptor.mediaType === MEDIA_TYPES.dockerManifestList ? await childDigests(client, repo, digest) : [];
    gate = evaluateGate(report, { ...(maxSeverity ? { maxSeverity } : {}), ignore, image: { repository: repoName, digest, alsoDigests } });
    if (gate.match.warning) io.stderr.write(`signet sign: warning: ${printable(gate.match.warning, LIMITS.reason)}\n`);
    if (!gate.passed) {
      // Findings come from the scanner's report: each line escaped and bounded.
      io.stdout.write(
        `${formatBlockingTable(gate.blocking)
          .split('\n')
          .map((l) => printable(l, LIMITS.reason))
          .join('\n')}\n`,
      );
      throw new SignetError('SCAN_GATE_FAILED', gateFailureMessage(report, gate));
    }
  }

  const signer = await openSigner(values.key, values.pkcs11Module !== undefined ? { pkcs11Module: values.pkcs11Module } : {});
  try {
    // `added` false: this key had already signed this digest (the same payload), nothing was pushed.
    let signed: { signatureTag: string; signatureManifestDigest: string; layers: number; added: boolean };
    if (format === 'cosign') {
      signed = await signImageCosign(client, repo, digest, signer, { dockerReference: repoName, annotations });
    } else {
      const { referrer, added } = await signImageBundle(client, repo, descriptor, repoName, signer);
      signed = { signatureTag: `referrer ${referrer}`, signatureManifestDigest: referrer, layers: 1, added };
    }
    let attestation: { tag: string; manifestDigest: string; layers: number } | undefined;
    if (values.attestScan && report !== undefined) {
      const att = await createVulnAttestation(report, { repository: repoName, digest }, signer);
      attestation = await appendArtifactLayer(client, repo, att.tag, att.envelopeBytes, { mediaType: att.layerMediaType, annotations: att.layerAnnotations });
    }
    const result = {
      image: repoName,
      digest,
      key: { fingerprint: signer.fingerprint, algorithm: signer.algorithm },
      signature: {
        format,
        tag: format === 'cosign' ? `${repoName}:${signed.signatureTag}` : `${repoName}@${signed.signatureManifestDigest}`,
        manifestDigest: signed.signatureManifestDigest,
        signatures: signed.layers,
        added: signed.added,
      },
      ...(attestation
        ? { attestation: { tag: `${repoName}:${attestation.tag}`, manifestDigest: attestation.manifestDigest, attestations: attestation.layers } }
        : {}),
      ...(gate ? { gate: { passed: true, maxSeverity: gate.maxSeverity, counts: gate.counts, ignored: gate.ignored.map((f) => f.id) } } : {}),
    };
    if (output === 'json') io.stdout.write(`${printableJson(result, 2)}\n`);
    else {
      io.stdout.write(
        [
          `signed      ${printable(`${repoName}@${digest}`, LIMITS.reason)}`,
          `key         ${signer.fingerprint} (${signer.algorithm})`,
          format === 'cosign'
            ? `signature   ${printable(result.signature.tag, LIMITS.reason)} (${signed.layers} signature${signed.layers === 1 ? '' : 's'})`
            : `signature   ${printable(result.signature.tag, LIMITS.reason)} (sigstore bundle, OCI 1.1 referrer)`,
          ...(signed.added ? [] : ['unchanged   this key had already signed this digest with the same payload: no signature added']),
          ...(result.attestation ? [`attestation ${printable(result.attestation.tag, LIMITS.reason)}`] : []),
          ...(gate ? [`scan gate   passed (max ${gate.maxSeverity}${gate.ignored.length ? `, ${gate.ignored.length} ignored` : ''})`] : []),
        ].join('\n') + '\n',
      );
    }
    return 0;
  } finally {
    await signer.close?.();
  }
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SignetError('SCAN_REPORT_INVALID', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function childDigests(client: RegistryClient, repo: { registry: string; repository: string }, digest: string): Promise<string[]> {
  const index = await client.getManifest(repo, digest);
  try {
    const doc = JSON.parse(index.bytes.toString('utf8')) as { manifests?: Array<{ digest?: unknown }> };
    return (doc.manifests ?? []).map((m) => m.digest).filter((d): d is string => typeof d === 'string');
  } catch {
    return [];
  }
}
