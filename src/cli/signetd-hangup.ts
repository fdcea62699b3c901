/**
 * SIGHUP's default action ends the process, and `systemctl reload signetd` can come at any moment,
 * also while signetd is still starting (reading its config, loading policy and keys, opening its
 * socket). signetd imports this module first, so the handler is in place before any other module
 * is evaluated: until signetd is ready, a hangup is only noted; then one reload covers them all.
 */
let handler: (() => void) | undefined;
let pending = false;

process.on('SIGHUP', () => {
  if (handler) handler();
  else pending = true;
});

/** From now on SIGHUP calls `reload`; it is called once at once if hangups arrived before. */
export function onHangup(reload: () => void): void {
  handler = reload;
  if (pending) {
    pending = false;
    reload();
  }
}
