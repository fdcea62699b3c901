/** Options shared by the commands that talk to registries or load a policy. */
import { isValidHost } from '../../registry/reference.js';
import { UsageError } from './io.js';

export const REGISTRY_OPTIONS = {
  'insecure-registry': { type: 'string', multiple: true },
  'docker-config': { type: 'string' },
} as const;

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
