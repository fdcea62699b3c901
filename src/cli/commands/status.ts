/** `signet status`: ask a running signetd for its state (policy generation, keys, uptime). */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../daemon/grpc-server.js';
import { printable } from '../../util/printable.js';
import { UsageError, type CommandIo } from './io.js';

const USAGE = 'usage: signet status [--socket PATH] [--output text|json]';

export async function statusCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { socket: { type: 'string' }, output: { type: 'string', default: 'text' } }, strict: true });
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output must be text or json\n${USAGE}`);
  const socket = values.socket ?? process.env['SIGNET_SOCKET'] ?? '/run/signet/signetd.sock';
  const Client = verifierServiceClient(loadProtos());
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const status = await new Promise<Record<string, any>>((resolve, reject) => {
      const deadline = new Date(Date.now() + 5000);
      (client as any).Status({}, { deadline }, (err: grpc.ServiceError | null, res: Record<string, any>) => (err ? reject(err) : resolve(res)));
    });
    if (values.output === 'json') {
      io.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      return 0;
    }
    const lines = [
      `signetd ${status['version']}  up ${Math.round(status['uptimeSeconds'])} s  ${status['decisions']} decisions`,
      `policy   ${status['ready'] ? status['policyGeneration'] : 'NONE LOADED: every image is rejected'}  (${status['policyDir']})`,
      ...(status['policyFiles'] as string[]).map((f) => `         ${f}`),
      ...(status['lastReloadError'] ? [`reload error: ${status['lastReloadError']}`] : []),
      ...(status['warnings'] as string[]).map((w) => `warning: ${w}`),
      ...auditLines(status['audit'] as Record<string, any> | null | undefined),
      ...containerdLines(status['containerd'] as Record<string, any> | null | undefined),
      'keys',
      ...(status['keys'] as Array<Record<string, string>>).map(
        (k) => `  ${k['name']}  ${k['algorithm'] || '?'}  ${k['fingerprint'] || ''}  ${k['location']}${k['lastError'] ? `  ERROR: ${k['lastError']}` : ''}`,
      ),
    ];
    io.stdout.write(`${lines.join('\n')}\n`);
    return status['ready'] && status['audit']?.['writable'] !== false ? 0 : 1;
  } catch (err) {
    io.stderr.write(`signet status: cannot reach signetd at ${socket}: ${(err as grpc.ServiceError).details ?? (err as Error).message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** The containerd watch: connection, image events, the last reverification, refused images on the node. */
function containerdLines(c: Record<string, any> | null | undefined): string[] {
  if (!c) return ['containerd  not watched (containerd.enabled: false)'];
  const lines = [
    `containerd  ${c['connected'] ? `connected, ${c['version']}` : `NOT CONNECTED${c['lastError'] ? `: ${printable(c['lastError'])}` : ''}`}  (${c['address']})`,
    `images      ${c['imageEvents']} decided from events, ${c['imageEventsRefused']} refused, ${c['imagesRemoved']} removed  (onUnverified: ${c['onUnverified']})`,
    `reverify    ${c['lastReverify'] ? `${c['lastReverify']} (${c['lastReverifyTrigger']}): ${c['lastReverifyImages']} images, ${c['lastReverifyRefused']} refused` : 'not yet'}`,
  ];
  const refused = (c['refusedImages'] as string[] | undefined) ?? [];
  if (refused.length > 0) lines.push(`refused images on this node (${refused.length}):`, ...refused.slice(0, 20).map((r) => `  ${printable(r)}`), ...(refused.length > 20 ? [`  … and ${refused.length - 20} more (signet node audit lists them all)`] : []));
  return lines;
}

/** The audit log: written, or failing (and what happens to decisions meanwhile). */
function auditLines(a: Record<string, any> | null | undefined): string[] {
  if (!a) return [];
  if (a['writable']) return [`audit    ${printable(a['path'])}  ${a['written']} records${Number(a['failures']) > 0 ? `, ${a['failures']} lost earlier` : ''}`];
  const effect = a['onFailure'] === 'allow' ? 'decisions go on unrecorded (auditFailure: allow)' : 'every image is refused (auditFailure: reject)';
  return [`audit    FAILING since ${a['failingSince']}: ${printable(a['lastError'])}  (${printable(a['path'])}; ${a['failures']} records lost; ${effect})`];
}
