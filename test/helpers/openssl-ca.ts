/**
 * Certificate authorities for tests, made with the openssl CLI: a self-signed root and the intermediates
 * and leaves it issues, each with a chosen subject, validity window and x509v3 extensions. Everything is
 * signed with `openssl ca`, whose -startdate/-enddate let a root predate what it issues and a leaf be
 * expired or not yet valid. openssl's own files (configuration, index, requests, its copies of what it
 * issued) stay in a private temporary folder; each certificate and its key go to `dir` as
 * `<name>.pem` and `<name>.key`. openssl 3 adds subject and authority key identifiers to every issued
 * certificate; a root gets only the extensions it is given.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DAY_MS = 86_400_000;

/** A root CA's usual extensions (a caller adds `authorityKeyIdentifier=keyid:always` where its root names itself). */
export const ROOT_CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];

/** The certificate's key: ECDSA P-256 (the default) or RSA of some size. */
export type CertificateKeyType = 'ec-p256' | { rsaBits: number };

export interface CertificateSpec {
  /** The file names in `dir`: `<name>.pem` and `<name>.key`. */
  name: string;
  /** openssl's -subj form, e.g. `/O=Acme/CN=release`; kept as written (order and fields). */
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** x509v3 extension lines in openssl configuration syntax, e.g. `extendedKeyUsage=critical,timeStamping`. */
  extensions: string[];
  key?: CertificateKeyType;
}

export interface TestCertificate {
  name: string;
  pemPath: string;
  keyPath: string;
  pem: string;
  der: Buffer;
  key: KeyObject;
  /** A certificate signed by this one's key, in the same `dir` (an intermediate when its extensions say CA:TRUE). */
  issue(spec: CertificateSpec): TestCertificate;
}

export interface TestCa extends TestCertificate {
  dir: string;
}

export interface CaSpec extends Omit<CertificateSpec, 'extensions'> {
  /** Where the certificates and keys go. */
  dir: string;
  /** ROOT_CA_EXTENSIONS when unset. */
  extensions?: string[];
}

// Serial numbers are random (-rand_serial), as unlikely to repeat across authorities as real ones; `serial` must still be named.
// Every subject field optional and the request's subject kept as is (-preserveDN); many certificates may share a subject.
const CA_CONFIG = [
  '[ ca ]',
  'default_ca = test_ca',
  '[ test_ca ]',
  'database = ./index.txt',
  'serial = ./serial',
  'new_certs_dir = .',
  'default_md = sha256',
  'policy = any_subject',
  'copy_extensions = none',
  'unique_subject = no',
  '[ any_subject ]',
  'countryName = optional',
  'stateOrProvinceName = optional',
  'organizationName = optional',
  'organizationalUnitName = optional',
  'commonName = optional',
  '',
].join('\n');

/** openssl's time form, YYYYMMDDHHMMSSZ. */
const asn1Time = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';

const pemToDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

/** A self-signed root CA (valid from `notBefore`, which may be in the past), ready to issue. */
export function createCa(spec: CaSpec): TestCa {
  const work = mkdtempSync(join(tmpdir(), 'signet-openssl-ca-'));
  writeFileSync(join(work, 'ca.cnf'), CA_CONFIG);
  writeFileSync(join(work, 'index.txt'), '');
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });

  const sign = (subject: CertificateSpec, issuer: TestCertificate | undefined): TestCertificate => {
    const pemPath = join(spec.dir, `${subject.name}.pem`);
    const keyPath = join(spec.dir, `${subject.name}.key`);
    const keyType = subject.key ?? 'ec-p256';
    const newKey = keyType === 'ec-p256' ? ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : [`rsa:${keyType.rsaBits}`];
    openssl(['req', '-new', '-newkey', ...newKey, '-nodes', '-keyout', keyPath, '-out', `${subject.name}.csr`, '-subj', subject.subject]);
    writeFileSync(join(work, `${subject.name}.ext`), subject.extensions.join('\n') + '\n');
    const signer = issuer === undefined ? ['-selfsign', '-keyfile', keyPath] : ['-cert', issuer.pemPath, '-keyfile', issuer.keyPath];
    openssl(
      ['ca', '-batch', '-config', 'ca.cnf', '-rand_serial', '-preserveDN', '-notext', ...signer, '-in', `${subject.name}.csr`, '-out', pemPath].concat([
        '-startdate',
        asn1Time(subject.notBefore),
        '-enddate',
        asn1Time(subject.notAfter),
        '-extfile',
        `${subject.name}.ext`,
      ]),
    );
    const pem = readFileSync(pemPath, 'utf8');
    const certificate: TestCertificate = {
      name: subject.name,
      pemPath,
      keyPath,
      pem,
      der: pemToDer(pem),
      key: createPrivateKey(readFileSync(keyPath)),
      issue: (next) => sign(next, certificate),
    };
    return certificate;
  };

  return { dir: spec.dir, ...sign({ ...spec, extensions: spec.extensions ?? ROOT_CA_EXTENSIONS }, undefined) };
}
