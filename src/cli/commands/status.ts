/** `signet status`: ask a running signetd for its state (policy generation, keys, uptime). */
import * as grpc from '@grpc/grpc-js';
import { loadProtos, verifierServiceClient } from '../../daemon/grpc-server.js';
import { LIMITS, printable, printableJson } from '../../util/printable.js';
import type { CommandIo } from './io.js';
import type { OutputFormat } from '../option-values.js';
import { diagnoseSocket, signetdSocket } from './socket.js';

export interface StatusOptions {
  socket?: string;
  output: OutputFormat;
  /** Keep asking until signetd answers, at most this many milliseconds. */
  wait?: number;
  /** Only whether signetd answers. */
  ready?: boolean;
}
/** Exit codes: signetd healthy; signetd answered with a problem; signetd could not be asked. */
const EXIT_OK = 0;
const EXIT_PROBLEM = 1;
const EXIT_UNREACHABLE = 3;

export async function statusCommand(values: StatusOptions, io: CommandIo): Promise<number> {
  const waitMs = values.wait ?? 0;
  const socket = signetdSocket(values.socket);
  const Client = verifierServiceClient(loadProtos());
  const client = new Client(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    const ask = () =>
      new Promise<Record<string, any>>((resolve, reject) => {
        const deadline = new Date(Date.now() + 5000);
        (client as any).Status({}, { deadline }, (err: grpc.ServiceError | null, res: Record<string, any>) => (err ? reject(err) : resolve(res)));
      });
    // --wait: until signetd answers (scripts and tests wait for a starting signetd with it), then as usual.
    const until = Date.now() + waitMs;
    let status: Record<string, any>;
    for (;;) {
      try {
        status = await ask();
        break;
      } catch (err) {
        if (Date.now() >= until) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // --ready: only whether signetd answers (exit 0) or not (3), nothing printed.
    if (values.ready) return EXIT_OK;
    // Healthy: a policy in force, no reload error, every key loaded, the audit log written.
    const keyErrors = (status['keys'] as Array<Record<string, string>>).filter((k) => k['lastError']);
    const source = status['policySource'] as Record<string, any> | null | undefined;
    const healthy =
      Boolean(status['ready']) && !status['lastReloadError'] && keyErrors.length === 0 && status['audit']?.['writable'] !== false && !source?.['lastError'];
    if (values.output === 'json') {
      io.stdout.write(`${printableJson(status, 2)}\n`);
      return healthy ? EXIT_OK : EXIT_PROBLEM;
    }
    // Everything signetd reports may quote untrusted text (names, registry and token errors, policy files).
    const lines = [
      `signetd ${t(status['version'])}  up ${Math.round(status['uptimeSeconds'])} s  ${status['decisions']} decisions`,
      `policy   ${status['ready'] ? t(status['policyGeneration']) : 'NONE LOADED: every image is rejected'}  (${t(status['policyDir']) || 'no local policyDir'})`,
      ...sourceLines(source),
      ...(status['policyFiles'] as string[]).map((f) => `         ${t(f)}`),
      ...(status['lastReloadError']
        ? String(status['lastReloadError'])
            .split('\n')
            .map((l, i) => `${i === 0 ? 'reload error: ' : '  '}${t(l)}`)
        : []),
      ...(status['warnings'] as string[]).map((w) => `warning: ${t(w)}`),
      ...auditLines(status['audit'] as Record<string, any> | null | undefined),
      ...admissionLines(status['admission'] as Record<string, any> | null | undefined),
      ...containerdLines(status['containerd'] as Record<string, any> | null | undefined),
      ...nriLines(status['nri'] as Record<string, any> | null | undefined),
      ...cacheLines(status['cache'] as Record<string, any> | null | undefined, status['metricsListen']),
      'keys',
      ...(status['keys'] as Array<Record<string, string>>).map(
        (k) =>
          `  ${t(k['name'], LIMITS.name)}  ${t(k['algorithm'] || '?')}  ${t(k['fingerprint'] || '')}  ${t(k['location'])}${k['lastError'] ? `  ERROR: ${t(k['lastError'])}` : ''}`,
      ),
    ];
    if (!healthy) {
      const problems = [
        ...(status['ready'] ? [] : ['no policy loaded']),
        ...(status['lastReloadError'] ? ['the last policy reload failed (the previous policy stays in force)'] : []),
        ...(keyErrors.length > 0 ? [`${keyErrors.length} key(s) with errors: ${keyErrors.map((k) => t(k['name'], LIMITS.name)).join(', ')}`] : []),
        ...(status['audit']?.['writable'] === false ? ['the audit log cannot be written'] : []),
        ...(source?.['lastError'] ? ["the policy source's last check failed (the artifact in force stays)"] : []),
      ];
      lines.push(`PROBLEMS: ${problems.join('; ')}`);
    }
    io.stdout.write(`${lines.join('\n')}\n`);
    return healthy ? EXIT_OK : EXIT_PROBLEM;
  } catch (err) {
    const d = await diagnoseSocket(socket);
    const detail = t((err as grpc.ServiceError).details ?? (err as Error).message);
    // Something took the connection yet gave no answer: the gRPC error is then what tells more.
    const problem = d.answers ? `${d.problem}, but it did not answer as signetd (${detail})` : d.problem;
    io.stderr.write(`signet status: cannot reach signetd: ${problem} — ${d.remedy}\n`);
    return EXIT_UNREACHABLE;
  } finally {
    client.close();
  }
}

/** A field of the status as one bounded, escaped piece of a line. */
function t(value: unknown, max: number = LIMITS.reason): string {
  return printable(String(value ?? ''), max);
}

/** The signed policy artifact: which digest is in force, what the reference points to, the last failure. */
function sourceLines(s: Record<string, any> | null | undefined): string[] {
  if (!s) return [];
  const inForce = s['digest']
    ? `${t(s['digest'])} verified ${t(s['verifiedAt'])}${s['fromCache'] ? ' (from cacheDir; the registry has not confirmed it yet)' : ''}`
    : 'NONE VERIFIED';
  const remote = s['remoteDigest'] && s['remoteDigest'] !== s['digest'] ? `; ${t(s['ref'])} now points to ${t(s['remoteDigest'])}` : '';
  return [
    `source   ${t(s['ref'])}  ${inForce}${remote}`,
    `         checked every ${Number(s['intervalMs']) / 1000} s, last ${t(s['lastCheck']) || 'never'}; ${s['checks']} checks, ${s['failures']} failed, ${s['rejected']} artifacts refused  (cache ${t(s['cacheDir'])})`,
    ...(s['lastError'] ? [`source error: ${t(s['lastError'])}`] : []),
  ];
}

/** The containerd watch: connection, image events, the last reverification, refused images on the node. */
function containerdLines(c: Record<string, any> | null | undefined): string[] {
  if (!c) return ['containerd  not watched (containerd.enabled: false)'];
  const lines = [
    `containerd  ${c['connected'] ? `connected, ${t(c['version'])}` : `NOT CONNECTED${c['lastError'] ? `: ${t(c['lastError'])}` : ''}`}  (${t(c['address'])})`,
    `images      ${c['imageEvents']} decided from events, ${c['imageEventsRefused']} refused, ${c['imagesRemoved']} removed  (onUnverified: ${t(c['onUnverified'])})`,
    `reverify    ${c['lastReverify'] ? `${t(c['lastReverify'])} (${t(c['lastReverifyTrigger'])}): ${c['lastReverifyImages']} images, ${c['lastReverifyRefused']} refused` : 'not yet'}`,
  ];
  const refused = (c['refusedImages'] as string[] | undefined) ?? [];
  if (refused.length > 0)
    lines.push(
      `refused images on this node (${refused.length}):`,
      ...refused.slice(0, 20).map((r) => `  ${t(r)}`),
      ...(refused.length > 20 ? [`  … and ${refused.length - 20} more (signet node audit lists them all)`] : []),
    );
  return lines;
}

/** The audit log: written, or failing (and what happens to decisions meanwhile). */
function auditLines(a: Record<string, any> | null | undefined): string[] {
  if (!a) return [];
  if (a['writable']) return [`audit    ${t(a['path'])}  ${a['written']} records${Number(a['failures']) > 0 ? `, ${a['failures']} lost earlier` : ''}`];
  const effect = a['onFailure'] === 'allow' ? 'decisions go on unrecorded (auditFailure: allow)' : 'every image is refused (auditFailure: reject)';
  return [`audit    FAILING since ${t(a['failingSince'])}: ${t(a['lastError'])}  (${t(a['path'])}; ${a['failures']} records lost; ${effect})`];
}

/** The NRI plugin: registered with containerd or not (NRI fails open meanwhile), and creation decisions. */
function nriLines(n: Record<string, any> | null | undefined): string[] {
  if (!n) return ['nri         off (no nri: in the config): containers are not checked at creation'];
  const timeout = `decisions bounded at ${n['timeoutMs']} ms${Number(n['runtimeRequestTimeoutMs']) > 0 ? `, containerd waits ${n['runtimeRequestTimeoutMs']} ms` : ''}`;
  return [
    `nri         ${n['connected'] ? `registered with ${t(n['runtime'])} since ${t(n['since'])}` : `NOT REGISTERED (containers are created unchecked: NRI fails open)${n['lastError'] ? `: ${t(n['lastError'])}` : ''}`}  (${t(n['socket'])}, index ${t(n['index'])}; ${timeout})`,
    `creations   ${n['decided']} images decided, ${n['refused']} creations refused (${n['timedOut']} for want of a decision in time), ${n['cached']} verdicts and ${n['namesFromMemory']} names from memory${Number(n['protocolErrors']) > 0 ? `; ${n['protocolErrors']} malformed messages from containerd` : ''}`,
    ...(n['lastRefusal'] ? [`last refusal: ${t(n['lastRefusal'])}`] : []),
  ];
}

/** Admission control: the load now, and how many decisions were refused as overloaded. */
function admissionLines(a: Record<string, any> | null | undefined): string[] {
  if (!a) return [];
  const refused = Number(a['refusedQueueFull'] ?? 0) + Number(a['refusedQueueTimeout'] ?? 0);
  return [
    `load     ${a['inFlight']}/${a['maxInFlight']} deciding, ${a['queued']}/${a['maxQueued']} waiting (peak ${a['peakQueued']}); ${refused} refused as overloaded (RESOURCE_EXHAUSTED)`,
  ];
}

/** The verdict cache (every path shares it), the content cache, and where the metrics are served. */
function cacheLines(c: Record<string, any> | null | undefined, metricsListen: unknown): string[] {
  if (!c) return [];
  const asked = Number(c['hits']) + Number(c['misses']) + Number(c['coalesced']);
  const share = asked > 0 ? ` (${Math.round((100 * Number(c['hits'])) / asked)}% of ${asked} answered from memory)` : '';
  const content = c['content'] as Record<string, any> | undefined;
  const mib = (n: unknown): string => `${(Number(n) / 1024 / 1024).toFixed(1)} MiB`;
  return [
    `cache       ${c['entries']}/${c['maxEntries']} verdicts, ${c['hits']} hits, ${c['misses']} verifications, ${c['coalesced']} requests joined one under way${share}; dropped ${c['cleared']} times (policy or key changes); acceptances ${Number(c['ttlMs']) / 1000} s, refusals ${Number(c['negativeTtlMs']) / 1000} s at most`,
    ...(content
      ? [
          `content     ${content['entries']} manifests and blobs by digest, ${mib(content['bytes'])} of ${mib(content['maxBytes'])}, ${content['hits']} hits, ${content['misses']} fetched`,
        ]
      : []),
    `metrics     ${!metricsListen ? 'off (metrics: { listen: 127.0.0.1:9464 } turns them on)' : String(metricsListen).startsWith('/') ? `GET /metrics on unix socket ${t(metricsListen)}` : `http://${t(metricsListen)}/metrics`}`,
  ];
}
