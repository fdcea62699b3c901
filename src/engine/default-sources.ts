/** The signature sources every decision consults; the one place to add a new source. */
import type { RegistryClient } from '../registry/client.js';
import { RegistryCosignSource } from './registry-cosign-source.js';
import type { SignatureSource } from './sources.js';
import { RegistryAttestationSource } from './registry-attestation-source.js';

export function defaultSources(client: RegistryClient): SignatureSource[] {
  return [new RegistryCosignSource(client)];
}

export function defaultAttestationSources(client: RegistryClient): RegistryAttestationSource[] {
  return [new RegistryAttestationSource(client)];
}
