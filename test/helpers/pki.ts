/**
 * A small company PKI for tests, made with openssl: a root CA, an intermediate CA and code-signing leaf
 * certificates with subject alternative names, plus cosign `.sig` layers signed with a leaf's key and
 * carrying its certificate (and optionally the chain), as `cosign sign --certificate … --certificate-chain …`
 * lays them out.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, DAY_MS, ROOT_CA_EXTENSIONS } from './openssl-ca.js';
import type { CosignKeylessLayer } from './sigstore-fake.js';

export interface TestPki {
  dir: string;
  rootPath: string;
  intermediatePath: string;
  rootPem: string;
  intermediatePem: string;
  /** Issue a leaf from the intermediate; returns its PEM and key file. */
  leaf(name: string, options?: { san?: string; eku?: string; days?: number }): { pem: string; keyPath: string };
  /** A cosign `.sig` layer signed by `leaf`, carrying its certificate and, when asked, the chain. */
  cosignSigFor(leaf: { pem: string; keyPath: string }, dockerReference: string, digest: string, options?: { chain?: boolean }): CosignKeylessLayer;
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'signet-pki-'));
  const now = new Date();
  const after = (days: number) => new Date(now.getTime() + days * DAY_MS);
  const root = createCa({
    dir,
    name: 'root',
    subject: '/O=Acme/CN=Acme Root CA',
    notBefore: now,
    notAfter: after(3650),
    extensions: [...ROOT_CA_EXTENSIONS, 'authorityKeyIdentifier=keyid:always'],
  });
  const intermediate = root.issue({
    name: 'int',
    subject: '/O=Acme/CN=Acme Signing CA',
    notBefore: now,
    notAfter: after(1825),
    extensions: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
  const rootPem = root.pem;
  const intermediatePem = intermediate.pem;
  return {
    dir,
    rootPath: root.pemPath,
    intermediatePath: intermediate.pemPath,
    rootPem,
    intermediatePem,
    leaf(name, options = {}) {
      const issued = new Date();
      const leaf = intermediate.issue({
        name,
        subject: `/O=Acme/CN=${name}`,
        notBefore: issued,
        notAfter: new Date(issued.getTime() + (options.days ?? 30) * DAY_MS),
        extensions: [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          `extendedKeyUsage=${options.eku ?? 'codeSigning'}`,
          `subjectAltName=${options.san ?? 'email:release@acme.example,DNS:ci.acme.example,URI:https://ci.acme.example/release'}`,
        ],
      });
      return { pem: leaf.pem, keyPath: leaf.keyPath };
    },
    cosignSigFor(leaf, dockerReference, digest, options = {}) {
      const payload = Buffer.from(
        JSON.stringify({
          critical: {
            identity: { 'docker-reference': dockerReference },
            image: { 'docker-manifest-digest': digest },
            type: 'cosign container image signature',
          },
          optional: null,
        }),
      );
      const signature = sign('sha256', payload, createPrivateKey(readFileSync(leaf.keyPath)));
      return {
        payload,
        signature,
        annotations: {
          'dev.cosignproject.cosign/signature': signature.toString('base64'),
          'dev.sigstore.cosign/certificate': leaf.pem,
          ...(options.chain ? { 'dev.sigstore.cosign/chain': intermediatePem + rootPem } : {}),
        },
      };
    },
  };
}
