/**
 * A PolicyWatcher in a process of its own, so that a test running as root can run it as an
 * unprivileged user: only then does `chmod 000` really take the policy directory away from it.
 * Usage: node policy-watcher-child.js DIR. One JSON line per event on stdout
 * (`{"started":true}`, `{"scopes":[…]}`, `{"error":"…","code":"…"}`); exits when stdin closes.
 */
import { PolicyWatcher } from '../../src/policy/watcher.js';

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: policy-watcher-child DIR\n');
  process.exit(2);
}
const out = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};
const watcher = new PolicyWatcher(dir, {
  onPolicy: (p) => out({ scopes: Object.keys(p.scopes) }),
  onError: (e) => out({ error: e.message.slice(0, 500), code: e.code }),
});
process.stdin.on('end', () => {
  void watcher.close().then(() => process.exit(0));
});
process.stdin.resume();
await watcher.start();
out({ started: true });
