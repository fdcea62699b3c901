/**
 * SoftHSM2 tokens for tests. SoftHSM reads SOFTHSM2_CONF when the module is initialised, so one
 * temporary configuration and token directory serves the whole test process; every test creates
 * its own token (own label) in it. Child processes (signetd, pkcs11-tool) get the same variable.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
let conf: string | undefined;
let counter = 0;

export function softhsmConf(): string {
  if (conf === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'signet-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env['SOFTHSM2_CONF'] = conf;
  }
  return conf;
}

export interface TestToken {
  label: string;
  pin: string;
  soPin: string;
  conf: string;
  /** `pkcs11:token=<label>` */
  uri: string;
  /** Run pkcs11-tool against this token (logged in). */
  tool(args: string[], input?: Buffer): Buffer;
  delete(): void;
}

export function createToken(prefix = 'test'): TestToken {
  const c = softhsmConf();
  const label = `${prefix}-${process.pid}-${++counter}`;
  const pin = '246810';
  const soPin = '13579111';
  const env = { ...process.env, SOFTHSM2_CONF: c };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], { env, stdio: 'ignore' });
  return {
    label,
    pin,
    soPin,
    conf: c,
    uri: `pkcs11:token=${label}`,
    tool: (args, input) =>
      execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', pin, ...args], {
        env,
        ...(input ? { input } : {}),
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    delete: () => execFileSync('softhsm2-util', ['--delete-token', '--token', label], { env, stdio: 'ignore' }),
  };
}
