/** signetd's state in one line, for systemd's STATUS= (what `systemctl status signetd` shows). */
import type { DaemonStatus } from './daemon.js';

export function serviceStatusLine(status: Pick<DaemonStatus, 'ready' | 'policyGeneration' | 'lastReloadError' | 'keys'>, socket: string): string {
  const parts = [`serving ${socket}`, status.ready ? `policy ${status.policyGeneration}` : 'NO POLICY LOADED: every image is rejected'];
  const keyErrors = status.keys.filter((k) => k.lastError !== undefined && k.lastError !== '').length;
  if (keyErrors > 0) parts.push(`${keyErrors} key${keyErrors === 1 ? '' : 's'} unusable (signet status)`);
  if (status.lastReloadError !== '') parts.push(`last reload failed, the policy in force stays: ${status.lastReloadError}`);
  return parts.join('; ');
}
