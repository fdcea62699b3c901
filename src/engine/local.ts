/**
 * The daemon's engine, run in process by `signet verify` and `signet audit`: same policy loader,
 * same keys, same registry client, same decision code — what a node would decide.
 */
import { KeyRing } from '../keys/keyring.js';
import { PemKeyProvider } from '../keys/pem-provider.js';
import { SigstoreKeyProvider } from '../keys/sigstore-provider.js';
import { Pkcs11KeyProvider } from '../keys/pkcs11/provider.js';
import { loadPolicyDir } from '../policy/load.js';
import type { Policy } from '../policy/types.js';
import { RegistryClient } from '../registry/client.js';
import { SourceFactory } from './default-sources.js';
import { VerificationEngine } from './engine.js';
import { userAgent } from '../version.js';
import { DEFAULTS } from '../defaults.js';

export interface LocalEngineOptions {
  policyDir: string;
  insecureRegistries: string[];
  dockerConfig?: string;
  /** containerd's hosts.toml folder (mirrors, CAs, client certificates). */
  registryConfigPath?: string;
  pkcs11Module?: string;
  timeoutMs?: number;
  maxSignatures?: number;
}

export interface LocalEngine {
  engine: VerificationEngine;
  client: RegistryClient;
  policy: Policy;
  keys: KeyRing;
  close(): Promise<void>;
}

export async function openLocalEngine(options: LocalEngineOptions): Promise<LocalEngine> {
  const policy = await loadPolicyDir(options.policyDir);
  const keys = new KeyRing([
    new PemKeyProvider(),
    new SigstoreKeyProvider(),
    new Pkcs11KeyProvider(options.pkcs11Module !== undefined ? { defaultModule: options.pkcs11Module } : {}),
  ]);
  await keys.load(policy.keys);
  const client = new RegistryClient({
    insecureRegistries: options.insecureRegistries,
    ...(options.dockerConfig !== undefined ? { dockerConfigPath: options.dockerConfig } : {}),
    ...(options.registryConfigPath !== undefined ? { registryConfigPath: options.registryConfigPath } : {}),
    userAgent: userAgent('signet-cli'),
  });
  const sources = new SourceFactory(client);
  const engine = new VerificationEngine({
    snapshot: () => ({ policy, keys }),
    sourcesFor: (specs, formats) => sources.sources(specs, formats),
    timeoutMs: options.timeoutMs ?? DEFAULTS.verifyTimeoutMs,
    maxSignatures: options.maxSignatures ?? DEFAULTS.maxSignatures,
  });
  return { engine, client, policy, keys, close: () => keys.close() };
}
