/** Options shared by the commands that talk to registries or load a policy. */
import { parseArgs } from 'node:util';
import { openLocalEngine, type LocalEngine } from '../../engine/local.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dockerConfigPath } from '../../registry/credentials.js';
import { DEFAULT_REGISTRY_CONFIG_PATH } from '../../registry/hosts.js';
import { isValidHost } from '../../registry/reference.js';
import { UsageError } from './io.js';

export const REGISTRY_OPTIONS = {
  'insecure-registry': { type: 'string', multiple: true },
  'docker-config': { type: 'string' },
  'hosts-dir': { type: 'string' },
} as const;

/**
 * Where the CLI reads registry settings: --docker-config, else $DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json (as docker does); --hosts-dir, else containerd's /etc/containerd/certs.d.
 */
export function registrySettings(values: { 'docker-config'?: string | undefined; 'hosts-dir'?: string | undefined }): {
  dockerConfigPath?: string;
  registryConfigPath: string;
} {
  const docker = dockerConfigPath(values['docker-config'], process.env, join(homedir(), '.docker', 'config.json'));
  return { ...(docker !== undefined ? { dockerConfigPath: docker } : {}), registryConfigPath: values['hosts-dir'] ?? DEFAULT_REGISTRY_CONFIG_PATH };
}

export const POLICY_OPTIONS = {
  'policy-dir': { type: 'string' },
  'pkcs11-module': { type: 'string' },
} as const;

export function insecureRegistries(values: { 'insecure-registry'?: string[] | undefined }): string[] {
  const list = values['insecure-registry'] ?? [];
  for (const h of list) if (!isValidHost(h) || h.includes('/')) throw new UsageError(`--insecure-registry "${h}" is not HOST or HOST:PORT`);
  return list;
}

export function outputFormat(value: string | undefined): 'text' | 'json' {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new UsageError(`--output must be text or json, not "${value}"`);
}

export function policyDir(values: { 'policy-dir'?: string | undefined }): string {
  return values['policy-dir'] ?? process.env['SIGNET_POLICY_DIR'] ?? '/etc/signet/policy.d';
}

/**
 * The command line of `verify` and `audit`: one positional, registry and policy options, --output.
 * Returns undefined after printing the usage for --help.
 */
export function parseEngineCommand(argv: string[], usage: string, positionalName: string, io: { stdout: NodeJS.WritableStream }) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...REGISTRY_OPTIONS, ...POLICY_OPTIONS, output: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${usage}\n`);
    return undefined;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one ${positionalName}\n${usage}`);
  return { target: positionals[0]!, output: outputFormat(values.output), values };
}

/** The daemon's engine in process, configured from the command line. */
export function openEngineFromOptions(values: {
  'policy-dir'?: string | undefined;
  'insecure-registry'?: string[] | undefined;
  'docker-config'?: string | undefined;
  'hosts-dir'?: string | undefined;
  'pkcs11-module'?: string | undefined;
}): Promise<LocalEngine> {
  const registry = registrySettings(values);
  return openLocalEngine({
    policyDir: policyDir(values),
    insecureRegistries: insecureRegistries(values),
    registryConfigPath: registry.registryConfigPath,
    ...(registry.dockerConfigPath !== undefined ? { dockerConfig: registry.dockerConfigPath } : {}),
    ...(values['pkcs11-module'] !== undefined ? { pkcs11Module: values['pkcs11-module'] } : {}),
  });
}
