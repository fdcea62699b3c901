/**
 * A small company PKI for tests, made with openssl: a root CA, an intermediate CA and code-signing leaf
 * certificates with subject alternative names, plus cosign `.sig` layers signed with a leaf's key and
 * carrying its certificate (and optionally the chain), as `cosign sign --certificate … --certificate-chain …`
 * lays them out.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
    '-days',
    '3650',
    '-subj',
    '/O=Acme/CN=Acme Root CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  run([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'int.key',
    '-out',
    'int.csr',
    '-subj',
    '/O=Acme/CN=Acme Signing CA',
  ]);
  writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  run([
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-out',
    'int.pem',
    '-days',
    '1825',
    '-extfile',
    'int.ext',
  ]);
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const intermediatePem = readFileSync(join(dir, 'int.pem'), 'utf8');
  return {
    dir,
    rootPath: join(dir, 'root.pem'),
    intermediatePath: join(dir, 'int.pem'),
    rootPem,
    intermediatePem,
    leaf(name, options = {}) {
      run([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/O=Acme/CN=${name}`,
      ]);
      writeFileSync(
        join(dir, `${name}.ext`),
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          `extendedKeyUsage=${options.eku ?? 'codeSigning'}`,
          `subjectAltName=${options.san ?? 'email:release@acme.example,DNS:ci.acme.example,URI:https://ci.acme.example/release'}`,
          '',
        ].join('\n'),
      );
      run([
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'int.pem',
        '-CAkey',
        'int.key',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        String(options.days ?? 30),
        '-extfile',
        `${name}.ext`,
      ]);
      return { pem: readFileSync(join(dir, `${name}.pem`), 'utf8'), keyPath: join(dir, `${name}.key`) };
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
