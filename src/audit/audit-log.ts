/**
 * The audit trail: one JSON object per decision, one line each, appended to a file with winston.
 * Lines carry everything needed to answer "why was this pulled?" later without the daemon.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import winston from 'winston';
import type { Decision } from '../engine/decision.js';

export interface AuditRecord {
  event: 'decision';
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

  record(decision: Decision): void {
    const record: AuditRecord = {
      event: 'decision',
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
