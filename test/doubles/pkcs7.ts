/**
 * Signs deployment-spec JSON the way the commands service does: a PKCS#7 SignedData with the JSON as
 * encapsulated content, PEM-armoured (`-----BEGIN PKCS7-----`). Uses the openssl CLI; the key and the
 * self-signed certificate are made once per process.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

export const DEFAULT_SIGNER_SUBJECT = '/C=US/ST=Washington/L=Seattle/O=Amazon.com, Inc./CN=codedeploy-signer-us-east-1.amazonaws.com';

export interface SigningIdentity {
  keyFile: string;
  certFile: string;
  certPem: string;
  /** As given to openssl: `/C=US/.../CN=...`. */
  subject: string;
  dir: string;
}

const identities = new Map<string, Promise<SigningIdentity>>();
let tempDir: { dir: string; cleanup: () => void } | undefined;
let counter = 0;

function workDir(): string {
  if (!tempDir) {
    // Inside the run's folder (removed by the global teardown) when there is one.
    tempDir = makeTempDir('cda-pkcs7-', process.env.CDA_TEST_RUN_DIR);
    const dir = tempDir;
    process.once('exit', () => dir.cleanup());
  }
  return tempDir.dir;
}

/** A 2048-bit RSA key and a self-signed certificate with `subject`; cached per subject. */
export function makeSigningIdentity(subject = DEFAULT_SIGNER_SUBJECT): Promise<SigningIdentity> {
  let identity = identities.get(subject);
  if (!identity) {
    identity = (async () => {
      const dir = workDir();
      const n = ++counter;
      const keyFile = join(dir, `signer-${n}.key`);
      const certFile = join(dir, `signer-${n}.crt`);
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
        '-subj', subject, '-days', '2', '-sha256']);
      return { keyFile, certFile, certPem: await readFile(certFile, 'utf8'), subject, dir };
    })();
    identities.set(subject, identity);
  }
  return identity;
}

export interface SignOptions {
  identity?: SigningIdentity;
  /** `PEM` (default, as the service sends), `DER` (returned base64-encoded without armour). */
  outform?: 'PEM' | 'DER';
  /**
   * Sign, then change one byte of the content: the JSON stays the same document (a trailing space
   * becomes a newline) but the signature no longer matches.
   */
  tamper?: boolean;
  /** Leave the signer certificate out of the SignedData (`-nocerts`). */
  noCerts?: boolean;
}

/** `openssl smime -sign -nodetach -binary`: returns the Payload string of a `PKCS7/JSON` envelope. */
export async function signJson(json: string, options: SignOptions = {}): Promise<string> {
  const identity = options.identity ?? (await makeSigningIdentity());
  const n = ++counter;
  const input = join(identity.dir, `content-${n}.json`);
  const output = join(identity.dir, `content-${n}.p7`);
  const content = options.tamper ? `${json} ` : json;
  await writeFile(input, content);
  await run('openssl', ['smime', '-sign', '-nodetach', '-binary', '-md', 'sha256', '-in', input, '-signer', identity.certFile,
    '-inkey', identity.keyFile, '-outform', 'DER', '-out', output, ...(options.noCerts ? ['-nocerts'] : [])]);
  let der: Buffer = await readFile(output);
  await Promise.all([rm(input, { force: true }), rm(output, { force: true })]);
  if (options.tamper) der = tamperContent(der, Buffer.from(content, 'utf8'));
  if (options.outform === 'DER') return der.toString('base64');
  return toPem(der);
}

export function toPem(der: Buffer, label = 'PKCS7'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function tamperContent(der: Buffer, content: Buffer): Buffer {
  const at = der.indexOf(content);
  if (at < 0) throw new Error('signed content not found in the PKCS7 DER');
  const copy = Buffer.from(der);
  copy[at + content.length - 1] = 0x0a; // the trailing space → a newline
  return copy;
}
