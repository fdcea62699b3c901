/** Where the commands that talk to signetd find it: --socket, else $SIGNET_SOCKET, else signetd's default. */
import { DEFAULT_CONFIG } from '../../daemon/config.js';

export function signetdSocket(flag: string | undefined): string {
  return flag ?? process.env['SIGNET_SOCKET'] ?? DEFAULT_CONFIG.socket;
}
