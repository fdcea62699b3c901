/**
 * The command line as an operator meets it: --help on every command and subcommand (walking the one
 * commander tree that also makes the bash completion and the man page), --version on the three
 * executables, one name per flag, and errors an operator can act on (status exit codes and socket
 * diagnosis, PIN_REQUIRED, policy check reading key files).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandPaths, findCommand, subcommands, valueCompletion, visibleOptions } from '../../src/cli/command-tree/walk.js';
import { createProgram } from '../../src/cli/program.js';
import { SIGNET, SIGNETD, startDaemon, VERIFIER, waitFor } from '../helpers/daemon.js';
import { createToken, SOFTHSM_MODULE, softhsmConf } from '../helpers/softhsm.js';

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', input: '', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const signet = (args: string[], env: NodeJS.ProcessEnv = {}) => run(SIGNET, args, env);

/** The tree signet parses with, walked here as the completion and the man page walk it. */
const TREE = createProgram({ stdout: process.stdout, stderr: process.stderr }).program;
const PATHS = commandPaths(TREE);
const commandAt = (path: string[]) => findCommand(TREE, path)!;
const longOptions = (path: string[]) => visibleOptions(commandAt(path)).flatMap((o) => (o.long !== undefined ? [o.long] : []));

describe('signet for an operator: help everywhere, flags, actionable errors', function () {
  this.timeout(60_000);
  const work = mkdtempSync(join(tmpdir(), 'signet-cli-op-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('--help and --version', () => {
    it('the tree has every command signet had (a walk that found nothing would prove nothing)', () => {
      const names = PATHS.map((p) => p.join(' '));
      for (const name of ['status', 'sign', 'verify', 'audit', 'policy check', 'policy push', 'policy status', 'keys generate', 'keys import'])
        assert.ok(names.includes(name), name);
      for (const name of ['node audit', 'doctor', 'install', 'uninstall', 'completion', 'man', 'version']) assert.ok(names.includes(name), name);
    });

    for (const path of PATHS) {
      for (const flag of ['--help', '-h']) {
        it(`signet ${[...path, flag].join(' ')}: its usage, subcommands and options on stdout, exit 0`, () => {
          const r = signet([...path, flag]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stderr, '');
          assert.match(r.stdout, new RegExp(`^usage: signet${path.length ? ` ${path.join(' ')}` : ''}[ \\n]`));
          for (const sub of subcommands(commandAt(path))) assert.match(r.stdout, new RegExp(`^  ${sub.name()} `, 'm'), sub.name());
          for (const option of longOptions(path)) assert.ok(r.stdout.includes(option), `${option} in ${r.stdout}`);
        });
      }
    }

    it('signet help COMMAND [SUBCOMMAND] is COMMAND [SUBCOMMAND] --help; signet alone prints the usage on stderr and exits 2', () => {
      for (const name of ['policy', 'sign', 'keys']) {
        const help = signet(['help', name]);
        assert.equal(help.code, 0, help.stderr);
        assert.equal(help.stdout, signet([name, '--help']).stdout);
      }
      const keysHelp = signet(['keys', 'help', 'import']);
      assert.equal(keysHelp.stdout, signet(['keys', 'import', '--help']).stdout);
      const nested = signet(['help', 'policy', 'check']);
      assert.equal(nested.code, 0, nested.stderr);
      assert.equal(nested.stdout, signet(['policy', 'check', '--help']).stdout, 'help reads every command name, not only the first');
      assert.notEqual(nested.stdout, signet(['policy', '--help']).stdout);
      assert.equal(signet(['help', 'policy', 'no-such']).code, 2, 'an unknown subcommand is a usage error');
      const bare = signet([]);
      assert.equal(bare.code, 2);
      assert.equal(bare.stdout, '');
      assert.match(bare.stderr, /^usage: signet /);
      const noSub = signet(['policy']);
      assert.equal(noSub.code, 2);
      assert.match(noSub.stderr, /^usage: signet policy /);
    });

    it('policy schema --help prints help, not the schema; --help after other options too', () => {
      const r = signet(['policy', 'schema', '--help']);
      assert.doesNotMatch(r.stdout, /\$schema/);
      const s = signet(['status', '--socket', '/nonexistent', '--help']);
      assert.equal(s.code, 0);
      assert.match(s.stdout, /^usage: signet status/);
      const c = signet(['policy', 'check', '/nonexistent', '--output', 'json', '-h']);
      assert.match(c.stdout, /^usage: signet policy check/);
    });

    it('--version on signet, signetd and signet-verifier (which answers without reading stdin)', async () => {
      assert.match(signet(['--version']).stdout, /^signet \d+\.\d+\.\d+/);
      assert.match(run(SIGNETD, ['--version']).stdout, /^signetd \d+\.\d+\.\d+/);
      const help = run(SIGNETD, ['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^usage: signetd \[options\]\n[\s\S]*-c, --config <FILE>/);
      // signetd's usage errors: one line, exit 2, before anything starts.
      for (const [args, re] of [
        [['--confg', '/x.yaml'], /^signetd: unknown option '--confg' \(Did you mean --config\?\)/],
        [['--config'], /^signetd: option '-c, --config <FILE>' argument missing/],
        [['start'], /^signetd: too many arguments/],
      ] as const) {
        const r = run(SIGNETD, [...args]);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, re);
      }
      for (const flag of ['-version', '--version', '--help']) {
        // stdin stays open: a verifier that read it would hang until the test's timeout.
        const child = spawn(process.execPath, [VERIFIER, flag], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        child.stdin.destroy();
        assert.equal(code, 0, flag);
        assert.match(out, flag === '--help' ? /^usage: signet-verifier/ : /^signet-verifier \d+\.\d+\.\d+/);
      }
    });
  });

  describe('completion and man page from the same definitions', () => {
    const script = join(work, 'signet.bash');
    /** What bash offers for `line` (the last word is the one being completed), run in `cwd`. */
    const complete = (line: string, cwd = work): string[] => {
      const words = line.split(' ');
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _signet; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8', cwd },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean);
    };
    before(() => {
      const r = signet(['completion', 'bash']);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(script, r.stdout);
    });

    it('bash completion: valid bash that completes commands, subcommands, options and option values', () => {
      assert.ok(complete('signet ').includes('status'));
      const policySubs = complete('signet policy ').filter((w) => !w.startsWith('-'));
      for (const sub of ['check', 'explain', 'test', 'schema', 'push', 'status']) assert.ok(policySubs.includes(sub), `${sub} in ${policySubs.join(' ')}`);
      assert.ok(!policySubs.includes('doctor'), 'top-level commands are not offered after policy');
      assert.ok(complete('signet keys list --').includes('--pkcs11-module'));
      assert.ok(!complete('signet keys list --').includes('--module'), 'the deprecated spelling is not offered');
      assert.ok(complete('signet verify --h').includes('--hosts-dir'));
      assert.deepEqual(complete('signet status --output '), ['text', 'json']);
      assert.deepEqual(
        complete('signet completion ').filter((w) => !w.startsWith('-')),
        ['bash'],
      );
    });

    it('completion offers every command and every option of the tree, each option value as the tree says', () => {
      // A folder and a file to complete: directories for <DIR>, files for <FILE>/<PATH>/<SOCK>/<PEM>.
      const cwd = mkdtempSync(join(work, 'complete-'));
      mkdirSync(join(cwd, 'somedir'));
      writeFileSync(join(cwd, 'somefile'), '');
      let checkedValues = 0;
      for (const path of PATHS) {
        const offered = complete(['signet', ...path, ''].join(' '));
        for (const sub of subcommands(commandAt(path))) assert.ok(offered.includes(sub.name()), `signet ${path.join(' ')}: ${sub.name()}`);
        for (const option of longOptions(path)) assert.ok(offered.includes(option), `signet ${path.join(' ')}: ${option}`);
        for (const option of visibleOptions(commandAt(path))) {
          const how = valueCompletion(option);
          if (how === undefined || how === 'none') continue;
          const values = complete(['signet', ...path, option.long!, 'some'].join(' '), cwd);
          if (how === 'dir') assert.deepEqual(values, ['somedir'], `${path.join(' ')} ${option.long}`);
          else if (how === 'file') assert.deepEqual(values.sort(), ['somedir', 'somefile'], `${path.join(' ')} ${option.long}`);
          else assert.deepEqual(complete(['signet', ...path, option.long!, ''].join(' ')), [...how.choices], `${path.join(' ')} ${option.long}`);
          checkedValues++;
        }
      }
      assert.ok(checkedValues > 20, `${checkedValues} option values checked`);
    });

    it('man page: roff naming every command and option', () => {
      const man = signet(['man']).stdout;
      assert.match(man, /^\.TH SIGNET 1/);
      const esc = (t: string) => t.replace(/-/g, '\\-');
      // Each command's entry: from its ".B signet …" line to the next command's.
      const entries = man.split(/\n\.TP\n(?=\.B signet )/);
      for (const path of PATHS.filter((p) => p.length > 0)) {
        const entry = entries.find((e) => e.startsWith(`.B ${esc(['signet', ...path].join(' '))} `) || e === `.B ${esc(['signet', ...path].join(' '))}`);
        assert.ok(entry !== undefined, path.join(' '));
        const optionLines = entry.split('\n').filter((l) => l.startsWith('.B '));
        // -h/--help is described once, under OPTIONS.
        for (const option of longOptions(path).filter((o) => o !== '--help'))
          assert.ok(
            optionLines.some((l) => new RegExp(`(^\\.B |, )${esc(option).replace(/\\/g, '\\\\')}( |$)`).test(l)),
            `${path.join(' ')} ${option}`,
          );
      }
      assert.ok(man.includes('\\-\\-pkcs11\\-module'));
      // Valid roff: man(1) renders it without a warning.
      const rendered = spawnSync('man', ['--warnings', '-l', '-'], {
        input: man,
        encoding: 'utf8',
        env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '' },
      });
      if (rendered.error === undefined) {
        assert.equal(rendered.stderr, '', rendered.stderr);
        assert.match(rendered.stdout, /signet policy push/);
      }
    });
  });

  describe('usage errors: one line naming the command, exit 2, nothing run', () => {
    const cases: Array<[string, string[], RegExp]> = [
      [
        'an unknown option, with the likely one',
        ['verify', 'reg.invalid/a:1', '--polcy-dir', work],
        /^signet verify: unknown option '--polcy-dir' \(Did you mean --policy-dir\?\)/,
      ],
      ['an unknown command', ['verfy'], /^signet: unknown command 'verfy' \(Did you mean verify\?\)/],
      ['an unknown subcommand', ['policy', 'chek'], /^signet policy: unknown command 'chek'/],
      ['a missing argument', ['policy', 'push', work, '--key', 'k.pem'], /^signet policy push: missing required argument 'REF'/],
      ['one argument too many', ['verify', 'reg.invalid/a:1', 'reg.invalid/b:1'], /^signet verify: too many arguments/],
      ['a missing required option', ['keys', 'list'], /^signet keys list: required option '--key <PKCS11-URI>' not specified/],
      ['a value not among the choices', ['status', '--output', 'yaml'], /^signet status: --output must be text or json, not "yaml"$/],
      ['a bad number', ['audit', 'reg.invalid/a', '--max-tags', '0'], /^signet audit: --max-tags needs a number from 1 to 1000000$/],
      ['a bad duration', ['status', '--wait', 'soon'], /^signet status: --wait takes a duration such as 500ms, 30s or 2m$/],
      ['an option without its value', ['doctor', '--probe'], /^signet doctor: option '--probe <IMAGE>' argument missing/],
      ['an unknown shell', ['completion', 'zsh'], /^signet completion: .*'zsh' is invalid.*bash/],
      ['an escape sequence in an unknown option', ['status', '--\x1b[2Jx'], /^signet status: unknown option '--\\x1b\[2Jx'/],
    ];
    for (const [what, args, re] of cases)
      it(what, () => {
        const r = signet(args, { SIGNET_SOCKET: join(work, 'none.sock') });
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr.trimEnd(), re);
      });
  });

  describe('one name per flag', () => {
    it('keys takes --pkcs11-module like every other command; --module still works but says it is deprecated', () => {
      const bogus = join(work, 'no-such-module.so');
      const now = signet(['keys', 'list', '--key', 'pkcs11:token=x', '--pkcs11-module', bogus]);
      assert.notEqual(now.code, 2, `--pkcs11-module must be accepted: ${now.stderr}`);
      assert.match(now.stderr, /no-such-module\.so/);
      const old = signet(['keys', 'list', '--key', 'pkcs11:token=x', '--module', bogus]);
      assert.match(old.stderr, /--module is deprecated; use --pkcs11-module/);
      assert.match(old.stderr, /no-such-module\.so/);
    });

    it('verify, audit, policy test and sign take --hosts-dir (not an unknown option)', () => {
      for (const args of [
        ['verify', 'reg.invalid/a:1'],
        ['audit', 'reg.invalid/a'],
        ['policy', 'test', 'reg.invalid/a:1'],
        ['sign', '--key', join(work, 'none.pem'), 'reg.invalid/a:1'],
      ]) {
        const r = signet(
          [...args, '--hosts-dir', work, '--policy-dir', work].filter(
            (a, i, all) => !(args[0] === 'sign' && (a === '--policy-dir' || all[i - 1] === '--policy-dir')),
          ),
        );
        assert.doesNotMatch(r.stderr, /Unknown option/, `${args.join(' ')}: ${r.stderr}`);
      }
    });
  });

  describe('errors an operator can act on', () => {
    it('status: exit 3 naming the socket; a missing file, a file that is not a socket and a dead socket read differently', async () => {
      const missing = signet(['status', '--socket', join(work, 'absent.sock')]);
      assert.equal(missing.code, 3);
      assert.match(
        missing.stderr,
        /^signet status: cannot reach signetd: signetd's socket \S*absent\.sock: no such file \(signetd is not running, or listens elsewhere\) — start signetd/,
      );
      writeFileSync(join(work, 'plain-file'), '');
      const notSocket = signet(['status', '--socket', join(work, 'plain-file')]);
      assert.equal(notSocket.code, 3);
      assert.match(notSocket.stderr, /plain-file: the file exists but is not a socket \(signetd does not listen there\) — check --socket and SIGNET_SOCKET/);
      // A socket whose listener was killed: the file stays, nobody answers.
      const dead = join(work, 'dead.sock');
      const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(dead)}, () => console.log('up'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      const stale = signet(['status', '--socket', dead]);
      assert.equal(stale.code, 3);
      assert.match(stale.stderr, /dead\.sock: a socket file, but nothing answers on it \(ECONNREFUSED\): .* — restart signetd/);
    });

    it('status: exit 1 while signetd reports a key error, and while it reports a reload error; 0 when healthy', async () => {
      const d = await startDaemon();
      try {
        const keyFile = join(d.dir, 'release.pub');
        d.writePolicy('policy.yaml', {
          apiVersion: 'signet/v1',
          keys: { release: { file: keyFile } },
          scopes: { 'reg.example/prod': { action: 'verify', signatures: { keys: ['release'] } } },
        });
        await waitFor(() => d.log().includes('policy loaded'), 'the policy');
        const broken = signet(['status', '--socket', d.socket]);
        assert.equal(broken.code, 1, broken.stdout);
        assert.match(broken.stdout, /ERROR/);
        assert.match(broken.stdout, /PROBLEMS: 1 key\(s\) with errors: release/);
        assert.equal(signet(['status', '--socket', d.socket, '--output', 'json']).code, 1);

        d.writePolicy('policy.yaml', { apiVersion: 'signet/v1', scopes: { 'reg.example/prod': { action: 'accept' } } });
        await waitFor(() => signet(['status', '--socket', d.socket]).code === 0, 'a healthy status once the policy names no missing key', 10_000);

        d.writePolicy('zz-bad.yaml', 'apiVersion: signet/v1\nscopes: [\n');
        await waitFor(() => /reload error/.test(signet(['status', '--socket', d.socket]).stdout), 'the reload error', 10_000);
        const reload = signet(['status', '--socket', d.socket]);
        assert.equal(reload.code, 1);
        assert.match(reload.stdout, /PROBLEMS: the last policy reload failed/);
      } finally {
        await d.stop();
      }
    });

    it('policy check: a key file that does not exist is a problem with file and line (exit 1); one that exists is ok', () => {
      const dir = join(work, 'policy');
      spawnSync('mkdir', ['-p', dir]);
      writeFileSync(
        join(dir, 'p.yaml'),
        `apiVersion: signet/v1\n# comment\nkeys:\n  release: { file: ${join(work, 'missing.pub')} }\nscopes:\n  reg.example/prod: { action: verify, signatures: { keys: [release] } }\n`,
      );
      const r = signet(['policy', 'check', dir]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /p\.yaml:4: key "release": file \S*missing\.pub does not exist/);
      writeFileSync(join(work, 'missing.pub'), 'not a key');
      assert.match(signet(['policy', 'check', dir]).stdout, /holds no PEM block/);
      const { publicKey } = require_crypto().generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileSync(join(work, 'missing.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
      const ok = signet(['policy', 'check', dir]);
      assert.equal(ok.code, 0, ok.stdout);
    });

    it('keys without a PIN: PIN_REQUIRED saying where a PIN can come from (not PIN_INCORRECT)', () => {
      const token = createToken('nopin');
      const r = signet(['keys', 'generate', '--key', token.uri, '--label', 'x', '--pkcs11-module', SOFTHSM_MODULE], {
        SOFTHSM2_CONF: softhsmConf(),
        SIGNET_PKCS11_PIN: '',
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /PIN_REQUIRED/);
      assert.match(r.stderr, /pin-source=/);
      assert.match(r.stderr, /SIGNET_PKCS11_PIN/);
      assert.doesNotMatch(r.stderr, /PIN_INCORRECT/);
    });
  });
});

import * as nodeCrypto from 'node:crypto';
function require_crypto(): typeof nodeCrypto {
  return nodeCrypto;
}
