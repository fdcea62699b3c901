/** Options shared by the commands that talk to registries or load a policy. */
import { openLocalEngine, type LocalEngine } from '../../engine/local.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dockerConfigPath } from '../../registry/credentials.js';
import { DEFAULT_REGISTRY_CONFIG_PATH } from '../../registry/hosts.js';
import { isValidHost } from '../../registry/reference.js';
import { UsageError } from './io.js';

/** The registry options (`--insecure-registry`, `--docker-config`, `--hosts-dir`) as commander parsed them. */
export interface RegistryOptions {
  insecureRegistry?: string[];
  dockerConfig?: string;
  hostsDir?: string;
}

/** The policy options of the commands that decide in process (`--policy-dir`, `--pkcs11-module`). */
export interface PolicyOptions {
  policyDir?: string;
  pkcs11Module?: string;
}

/**
 * Where the CLI reads registry settings: --docker-config, else $DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json (as docker does); --hosts-dir, else containerd's /etc/containerd/certs.d.
 */
export function registrySettings(options: RegistryOptions): {
  dockerConfigPath?: string;
  registryConfigPath: string;
} {
  const docker = dockerConfigPath(options.dockerConfig, process.env, join(homedir(), '.docker', 'config.json'));
  return { ...(docker !== undefined ? { dockerConfigPath: docker } : {}), registryConfigPath: options.hostsDir ?? DEFAULT_REGISTRY_CONFIG_PATH };
}

export function insecureRegistries(options: RegistryOptions): string[] {
  const list = options.insecureRegistry ?? [];
  for (const h of list) if (!isValidHost(h) || h.includes('/')) throw new UsageError(`--insecure-registry "${h}" is not HOST or HOST:PORT`);
  return list;
}

export function policyDir(options: { policyDir?: string }): string {
  return options.policyDir ?? process.env['SIGNET_POLICY_DIR'] ?? '/etc/signet/policy.d';
}

/** The daemon's engine in process, configured from the command line. */
export function openEngineFromOptions(options: RegistryOptions & PolicyOptions): Promise<LocalEngine> {
  const registry = registrySettings(options);
  return openLocalEngine({
    policyDir: policyDir(options),
    insecureRegistries: insecureRegistries(options),
    registryConfigPath: registry.registryConfigPath,
    ...(registry.dockerConfigPath !== undefined ? { dockerConfig: registry.dockerConfigPath } : {}),
    ...(options.pkcs11Module !== undefined ? { pkcs11Module: options.pkcs11Module } : {}),
  });
}
