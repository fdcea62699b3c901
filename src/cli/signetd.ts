#!/usr/bin/env node
/** signetd: the node daemon. `signetd --config /etc/signet/signetd.yaml` */
// First: SIGHUP is handled from the first instant (a reload during start-up must not kill signetd).
// Only small modules are imported statically; the daemon itself is imported in main(), after the
// handler is in place (every static import is loaded before any module body runs).
import { onHangup } from './signetd-hangup.js';
import { existsSync, rmSync } from 'node:fs';
import type { DaemonConfig } from '../daemon/config.js';
import { SdNotifier } from '../daemon/sd-notify.js';
import { serviceStatusLine } from '../daemon/service-status.js';
import { describeError } from '../errors.js';
import { DEFAULT_CONFIG_PATH, parseSignetdArgs } from './signetd-args.js';
import { LIMITS, printable } from '../util/printable.js';

async function main(): Promise<number> {
  const [
    { DEFAULT_CONFIG, loadConfig },
    { Daemon, VERSION },
    { GrpcServer },
    { VerifyHttpServer },
    { createLogger, routeProcessWarnings },
    { Pkcs11KeyProvider },
  ] = await Promise.all([
    import('../daemon/config.js'),
    import('../daemon/daemon.js'),
    import('../daemon/grpc-server.js'),
    import('../daemon/verify-http.js'),
    import('../daemon/logger.js'),
    import('../keys/pkcs11/provider.js'),
  ]);
  const args = parseSignetdArgs(process.argv.slice(2), VERSION, process);
  if (!args.run) return args.exitCode;
  let config: DaemonConfig;
  try {
    // Without --config: the default file if there is one (a broken one is an error, never ignored), else defaults.
    config =
      args.config !== undefined ? await loadConfig(args.config) : existsSync(DEFAULT_CONFIG_PATH) ? await loadConfig(DEFAULT_CONFIG_PATH) : DEFAULT_CONFIG;
  } catch (err) {
    process.stderr.write(`signetd: ${printable(describeError(err), LIMITS.reason)}\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);
  routeProcessWarnings(log);
  // Type=notify: systemd hears READY=1 once the socket serves (nothing is sent without NOTIFY_SOCKET).
  const systemd = SdNotifier.fromEnvironment(process.env, log);
  const daemon = new Daemon(config, log, [new Pkcs11KeyProvider(config.pkcs11Module !== undefined ? { defaultModule: config.pkcs11Module } : {})]);
  const server = new GrpcServer(daemon);
  // The shell verifier's door: the same decisions as gRPC VerifyImage, over HTTP/1.1 (verify-http.ts).
  const verifyHttp = config.verifySocket === '' ? undefined : new VerifyHttpServer(daemon.verifyImage, log);
  try {
    await daemon.start();
    // gRPC first: its "another signetd is serving" check names the socket operators know.
    await server.listen(config.socket);
    await verifyHttp?.listen(config.verifySocket).catch(async (err: unknown) => {
      await server.close(0);
      rmSync(config.socket, { force: true });
      throw err;
    });
  } catch (err) {
    log.error('signetd cannot start', { error: describeError(err) });
    void systemd.status(`cannot start: ${describeError(err)}`);
    await daemon.stop().catch(() => undefined);
    await systemd.settled(2000);
    return 1;
  }
  log.info('signetd listening', {
    socket: config.socket,
    verifySocket: config.verifySocket,
    policyDir: config.policyDir,
    auditLog: config.auditLog,
    version: VERSION,
  });
  const statusLine = () => serviceStatusLine(daemon.status(), config.socket);
  void systemd.ready(statusLine());
  daemon.onStatusChange(() => void systemd.status(statusLine()));

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info('signetd stopping', { signal });
      void systemd.stopping(`stopping (${signal})`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    onHangup(() => {
      log.info('SIGHUP: reloading policy and keys');
      void systemd.reloading('reloading policy and keys (SIGHUP)');
      void daemon.reload().finally(() => void systemd.ready(statusLine()));
    });
  });
  await Promise.all([server.close(), verifyHttp?.close()]);
  await daemon.stop();
  rmSync(config.socket, { force: true });
  if (config.verifySocket !== '') rmSync(config.verifySocket, { force: true });
  await systemd.settled(2000);
  return 0;
}

process.on('unhandledRejection', (err) => {
  // Never crash on input; log and keep serving.
  process.stderr.write(`${JSON.stringify({ level: 'error', message: 'unhandled rejection', error: printable(describeError(err), LIMITS.reason) })}\n`);
});

void main().then((code) => process.exit(code));
