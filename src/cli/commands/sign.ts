/**
 * `signet sign --key KEYREF IMAGE`: sign an image digest with a key that stays in the HSM (or a PEM
 * file), only after the vulnerability gate passes, optionally with a signed scan attestation.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createVulnAttestation } from '../../attest/vuln.js';
import { SignetError } from '../../errors.js';
import { openSigner } from '../../keys/open-signer.js';
import { RegistryClient } from '../../registry/client.js';
import { parseReference, repositoryName } from '../../registry/reference.js';
import { MEDIA_TYPES } from '../../registry/types.js';
import { evaluateGate, formatBlockingTable, gateFailureMessage, parseIgnoreFile, parseMaxSeverity, type GateResult } from '../../scan/gate.js';
import { parseScanReport, type ScanReport } from '../../scan/report.js';
import { appendArtifactLayer } from '../../signing/artifact-manifest.js';
import { signImageCosign } from '../../signing/cosign-sign.js';
import { signImageBundle } from '../../signing/bundle-sign.js';
import { insecureRegistries, outputFormat, REGISTRY_OPTIONS, registrySettings } from './common.js';
import { UsageError, type CommandIo } from './io.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { userAgent } from '../../version.js';

const USAGE = `usage: signet sign --key KEYREF IMAGE [options]
  KEYREF                    pkcs11:… URI (PIN: pin-source=, pin-value= or $SIGNET_PKCS11_PIN) or a PEM PKCS#8 private key file ($SIGNET_KEY_PASSPHRASE)
  IMAGE                     host/repo:tag or host/repo@sha256:…; a tag is resolved first and the digest is signed
  --format F                cosign (default: simple signing at sha256-<hex>.sig) or sigstore-bundle (cosign v3: a
                            sigstore bundle pushed as an OCI 1.1 referrer, with the referrers tag for older registries)
  -a, --annotation K=V      added to the signature's "optional" section (repeatable; cosign format)
  --scan-report FILE        Trivy or Grype JSON for this image: the gate
  --max-severity LEVEL      none|low|medium|high|critical: highest severity still allowed (default high)
  --ignore ID               a finding to ignore (repeatable); --ignore-file FILE: one ID per line
  --attest-scan             also push a signed vulnerability attestation (needs --scan-report)
  --insecure-registry H:P   plain-HTTP registry (repeatable); --docker-config FILE for credentials
  --pkcs11-module PATH      PKCS#11 module when the URI has no module-path
  --output text|json`;

export async function signCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...REGISTRY_OPTIONS,
      key: { type: 'string' },
      annotation: { type: 'string', short: 'a', multiple: true },
      'scan-report': { type: 'string' },
      'max-severity': { type: 'string' },
      ignore: { type: 'string', multiple: true },
      'ignore-file': { type: 'string' },
      'attest-scan': { type: 'boolean' },
      format: { type: 'string' },
      'pkcs11-module': { type: 'string' },
      output: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one IMAGE\n${USAGE}`);
  if (values.key === undefined) throw new UsageError('--key KEYREF is required');
  if (values['attest-scan'] && values['scan-report'] === undefined) throw new UsageError('--attest-scan needs --scan-report');
  const format = values.format ?? 'cosign';
  if (format !== 'cosign' && format !== 'sigstore-bundle') throw new UsageError(`--format must be cosign or sigstore-bundle, not "${format}"`);
  if (format === 'sigstore-bundle' && (values.annotation ?? []).length > 0) throw new UsageError('--annotation applies to the cosign format only');
  const output = outputFormat(values.output);
  const annotations: Record<string, string> = {};
  for (const a of values.annotation ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${a}" is not KEY=VALUE`);
    annotations[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const maxSeverity = values['max-severity'] !== undefined ? parseMaxSeverity(values['max-severity']) : undefined;
  const ignore = [...(values.ignore ?? [])];
  if (values['ignore-file'] !== undefined) ignore.push(...parseIgnoreFile(readText(values['ignore-file'], 'ignore file'), values['ignore-file']));
  // Read and parse the report before touching the registry or the HSM: bad input fails fast.
  const report: ScanReport | undefined =
    values['scan-report'] !== undefined ? parseScanReport(readText(values['scan-report'], 'scan report'), values['scan-report']) : undefined;

  const ref = parseReference(positionals[0]!);
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

  const signer = await openSigner(values.key, values['pkcs11-module'] !== undefined ? { pkcs11Module: values['pkcs11-module'] } : {});
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
    if (values['attest-scan'] && report !== undefined) {
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
