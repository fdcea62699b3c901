/**
 * `signet node audit`: decide every image containerd holds on this node, in every namespace, under
 * the current policy (the engine in process, as `signet verify` does). Exit 1 if any is refused:
 * after a key is revoked, this names every image that still depends on it.
 */
import { ContainerdClient, DEFAULT_CONTAINERD_ADDRESS } from '../../containerd/client.js';
import { decideGroup, groupByTarget, mapLimit, type ImageVerdict } from '../../containerd/image-verdicts.js';
import { isUndecided } from '../../containerd/node-enforcer.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import { openEngineFromOptions, type PolicyOptions, type RegistryOptions } from './common.js';
import type { CommandIo } from './io.js';
import type { OutputFormat } from '../option-values.js';

export interface NodeAuditOptions extends RegistryOptions, PolicyOptions {
  /** containerd's socket. */
  containerd?: string;
  /** Only these namespaces (default all). */
  namespace?: string[];
  output: OutputFormat;
}

export interface NodeAuditRow {
  namespace: string;
  name: string;
  digest: string;
  decision: 'accept' | 'reject' | 'warn';
  /** True when the image could not be checked (registry down, key unavailable), as opposed to refused. */
  undecided: boolean;
  code: string;
  scope: string;
  reason: string;
}

export async function nodeAuditCommand(values: NodeAuditOptions, io: CommandIo): Promise<number> {
  const output = values.output;
  const address = values.containerd ?? process.env['CONTAINERD_ADDRESS'] ?? DEFAULT_CONTAINERD_ADDRESS;
  const local = await openEngineFromOptions(values);
  const client = new ContainerdClient(address);
  try {
    const all = await client.namespaces();
    const namespaces = values.namespace ?? all;
    for (const ns of namespaces) if (!all.includes(ns)) io.stderr.write(`signet node audit: containerd has no namespace "${printable(ns, LIMITS.name)}"\n`);
    const images = (await Promise.all(namespaces.filter((ns) => all.includes(ns)).map((ns) => client.listImages(ns)))).flat();
    const verdicts = (
      await mapLimit(groupByTarget(images), 4, (g) =>
        decideGroup(
          g,
          (r) => local.engine.verify(r),
          () => local.policy.generation,
        ),
      )
    ).flat();
    const rows = verdicts.map(toRow).sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const refused = rows.filter((r) => r.decision === 'reject').length;
    const summary = {
      containerd: address,
      namespaces,
      images: rows.length,
      accepted: rows.length - refused,
      refused,
      policyGeneration: local.policy.generation,
    };
    if (output === 'json') io.stdout.write(`${printableJson({ ...summary, results: rows }, 2)}\n`);
    else io.stdout.write(formatTable(rows, summary));
    return refused > 0 ? 1 : 0;
  } finally {
    client.close();
    await local.close();
  }
}

function toRow(v: ImageVerdict): NodeAuditRow {
  return {
    namespace: v.image.namespace,
    name: v.image.name,
    digest: v.image.target.digest,
    decision: v.decision.decision,
    undecided: isUndecided(v.decision),
    code: v.decision.code ?? '',
    scope: v.decision.scope,
    reason: v.decision.reason,
  };
}

function formatTable(rows: NodeAuditRow[], summary: { containerd: string; images: number; accepted: number; refused: number }): string {
  const header = ['NAMESPACE', 'IMAGE', 'DIGEST', 'DECISION', 'REASON'];
  const body = rows.map((r) => [
    printable(r.namespace, LIMITS.name),
    printable(r.name, LIMITS.name),
    `${printable(r.digest, LIMITS.name).slice(0, 19)}…`,
    r.undecided ? 'unchecked' : r.decision,
    r.decision === 'accept' ? '' : printable(r.reason, LIMITS.reason),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (i === 4 ? 0 : row[i]!.length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...body.map(line)].join('\n')}\n\n${printable(summary.containerd, LIMITS.name)}: ${summary.images} images, ${summary.accepted} accepted, ${summary.refused} refused\n`;
}
