/** Memory figures of a running process from /proc (Linux): resident set now and its peak. */
import { readFileSync } from 'node:fs';

export interface MemoryFigures {
  /** VmRSS, MiB. */
  rssMiB: number;
  /** VmHWM (peak resident set since the process started), MiB. */
  peakMiB: number;
}

export function memoryOf(pid: number): MemoryFigures {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) / 1024;
  };
  return { rssMiB: Math.round(kib('VmRSS')), peakMiB: Math.round(kib('VmHWM')) };
}

/** Whether the process is still alive (signal 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
