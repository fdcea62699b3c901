/**
 * The audit trail: one JSON object per decision, one line each, appended to a file with winston.
 * Lines carry everything needed to answer "why was this pulled?" later without the daemon.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import winston from 'winston';
import type { Decision } from '../engine/decision.js';

/**
 * `decision`: a question asked through the API (a pull through containerd's verifier, `signet`);
 * `image-event`: an image that arrived in containerd by any path, seen in its event stream;
 * `reverify`: an image already on the node, decided again (policy or key change, interval, restart).
 */
export type AuditEvent = 'decision' | 'image-event' | 'reverify';

/** Where an image-event or reverify decision came from, and what was done about it. */
export interface NodeContext {
  event: Exclude<AuditEvent, 'decision'>;
  namespace: string;
  /** none (accepted), reported, removed (record deleted from containerd), kept (could not be checked). */
  action: string;
}

export interface AuditRecord {
  event: AuditEvent;
  namespace?: string;
  action?: string;
  name: string;
  image: string;
  digest: string;
  mediaType: string;
  scope: string;
  decision: Decision['decision'];
  reason: string;
  code?: string;
  signatures: Decision['signatures'];
  warnings: string[];
  policyGeneration: string;
  durationMs: number;
}

/** `time` first thing in each record, RFC 3339 with milliseconds. */
const stampTime = winston.format((info) => Object.assign(info, { time: new Date().toISOString() }));

export class AuditLog {
  private readonly logger: winston.Logger;

  /** `path` is a file path, or `-` for standard output. */
  constructor(path: string) {
    const transport =
      path === '-'
        ? new winston.transports.Stream({ stream: process.stdout })
        : (mkdirSync(dirname(path), { recursive: true, mode: 0o750 }), new winston.transports.File({ filename: path, options: { flags: 'a', mode: 0o640 } }));
    this.logger = winston.createLogger({
      level: 'info',
      format: winston.format.combine(stampTime(), winston.format.json()),
      transports: [transport],
    });
    // A full disk or a removed directory must not take the daemon down: say so on stderr (journald).
    this.logger.on('error', (err: Error) => {
      process.stderr.write(`${JSON.stringify({ level: 'error', message: 'cannot write the audit log', auditLog: path, error: err.message })}\n`);
    });
  }

  record(decision: Decision, node?: NodeContext): void {
    const record: AuditRecord = {
      event: node?.event ?? 'decision',
      ...(node ? { namespace: node.namespace, action: node.action } : {}),
      name: decision.name,
      image: decision.image,
      digest: decision.digest,
      mediaType: decision.mediaType,
      scope: decision.scope,
      decision: decision.decision,
      reason: decision.reason,
      ...(decision.code !== undefined ? { code: decision.code } : {}),
      signatures: decision.signatures,
      warnings: decision.warnings,
      policyGeneration: decision.policyGeneration,
      durationMs: decision.durationMs,
    };
    this.logger.info(decision.decision, record);
  }

  /** Flush and close the file. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.logger.on('finish', () => resolve());
      this.logger.end();
      setTimeout(resolve, 2000).unref();
    });
  }
}
