/**
 * `signet audit REPOSITORY`: verify every tag of a repository against the policy the nodes enforce.
 * Meant to run on a schedule; exits non-zero when anything would be rejected.
 */
import cliProgress from 'cli-progress';
import type { LocalEngine } from '../../engine/local.js';
import type { Decision } from '../../engine/decision.js';
import { describeError, SignetError } from '../../errors.js';
import { parseReference, repositoryName } from '../../registry/reference.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { openEngineFromOptions, type PolicyOptions, type RegistryOptions } from './common.js';
import { UsageError, type CommandIo } from './io.js';
import type { OutputFormat } from '../option-values.js';

export interface AuditOptions extends RegistryOptions, PolicyOptions {
  /** Image tags audited at most (signature and attestation tags do not count); more is an error, never a partial audit. */
  maxTags: number;
  output: OutputFormat;
}
/** Tags cosign and friends use to store signatures, attestations and SBOMs: artifacts, not images. */
const ARTIFACT_TAG = /^(?:sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})(\.[a-z]+)?$/;

export interface AuditRow {
  tag: string;
  digest: string;
  decision: Decision['decision'] | 'error';
  signers: string[];
  reason: string;
  warnings: string[];
}

export async function auditCommand(repository: string, options: AuditOptions, io: CommandIo): Promise<number> {
  const { output, maxTags } = options;
  const ref = parseReference(repository);
  if (ref.digest !== undefined || (ref.tag !== undefined && repository.endsWith(`:${ref.tag}`)))
    throw new UsageError(`give a repository without tag or digest, e.g. ${repositoryName(ref)}`);
  const repoName = repositoryName(ref);
  const local = await openEngineFromOptions(options);
  try {
    // Bounded: artifact tags are dropped as they arrive, the rest may not exceed --max-tags.
    let tags: string[];
    try {
      tags = (await local.client.listTags(ref, { keep: (t) => !ARTIFACT_TAG.test(t), maxTags })).sort();
    } catch (err) {
      if (err instanceof SignetError && err.code === 'BLOB_TOO_LARGE' && /more than \d+ tags/.test(err.message))
        throw new SignetError(
          'BLOB_TOO_LARGE',
          `${repoName} has more than ${maxTags} image tags: nothing audited (a partial audit would hide tags); raise --max-tags to audit them all`,
        );
      throw err;
    }
    const tty = Boolean((io.stderr as NodeJS.WriteStream).isTTY) && output === 'text';
    const bar = tty
      ? new cliProgress.SingleBar(
          { stream: io.stderr as NodeJS.WriteStream, format: 'auditing {bar} {value}/{total} {tag}', hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
    bar?.start(tags.length, 0, { tag: '' });
    const rows: AuditRow[] = [];
    for (const tag of tags) {
      bar?.update(rows.length, { tag: printable(tag, 64) });
      rows.push(await auditTag(local, ref, repoName, tag));
    }
    bar?.update(rows.length, { tag: '' });
    bar?.stop();
    const rejected = rows.filter((r) => r.decision === 'reject' || r.decision === 'error').length;
    const summary = { repository: repoName, tags: rows.length, accepted: rows.length - rejected, rejected, policyGeneration: local.policy.generation };
    if (output === 'json') io.stdout.write(`${printableJson({ ...summary, results: rows.map(printableRow) }, 2)}\n`);
    else io.stdout.write(formatTable(rows, summary));
    return rejected > 0 ? 1 : 0;
  } finally {
    await local.close();
  }
}

async function auditTag(local: LocalEngine, ref: { registry: string; repository: string }, repoName: string, tag: string): Promise<AuditRow> {
  try {
    const descriptor = await local.client.resolve(ref, tag);
    const d = await local.engine.verify({ name: `${repoName}:${tag}`, descriptor });
    const signers = [...new Set(d.signatures.filter((s) => s.valid).map((s) => s.key))];
    return { tag, digest: d.digest, decision: d.decision, signers, reason: d.reason, warnings: d.warnings };
  } catch (err) {
    return { tag, digest: '', decision: 'error', signers: [], reason: describeError(err), warnings: [] };
  }
}

/** Tags, signers, reasons and warnings come from the registry and the policy: escaped and bounded. */
function printableRow(r: AuditRow): AuditRow {
  return {
    ...r,
    tag: printable(r.tag, LIMITS.name),
    digest: printable(r.digest, LIMITS.name),
    signers: r.signers.slice(0, LIMITS.items).map((s) => printable(s, LIMITS.name)),
    reason: printable(r.reason, LIMITS.reason),
    warnings: r.warnings.slice(0, LIMITS.items).map((w) => printable(w, LIMITS.detail)),
  };
}

function formatTable(rows: AuditRow[], summary: { repository: string; tags: number; accepted: number; rejected: number }): string {
  const header = ['TAG', 'DIGEST', 'DECISION', 'SIGNERS', 'NOTES'];
  const body = rows
    .map(printableRow)
    .map((r) => [
      r.tag,
      r.digest ? `${r.digest.slice(0, 19)}…` : '-',
      r.decision,
      r.signers.join(',') || '-',
      [...r.warnings, r.decision === 'accept' ? '' : r.reason].filter(Boolean).join('; '),
    ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (i === 4 ? 0 : row[i]!.length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...body.map(line)].join('\n')}\n\n${printable(summary.repository, LIMITS.name)}: ${summary.tags} tags, ${summary.accepted} accepted, ${summary.rejected} rejected\n`;
}
