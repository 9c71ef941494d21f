import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { LOCALHOST } from './ports';
import { runCommand } from './process';

/**
 * A throw-away certificate authority and one server certificate signed by it, for servers bound to
 * 127.0.0.1: the PEM files Redis reads, and the PKCS12 keystore/truststore a Kafka broker reads.
 * Generated with openssl and keytool at start, never stored in the repo.
 */
export interface TlsMaterial {
  dir: string;
  /** CA certificate (PEM): what clients trust (KAFKA_SSL_CA_FILE, REDIS_TLS_CA_FILE). */
  caFile: string;
  /** Server certificate (PEM), subjectAltName IP:127.0.0.1 and DNS:localhost. */
  certFile: string;
  /** Server private key (PEM, unencrypted, readable by the owner only). */
  keyFile: string;
  /** PKCS12 keystore holding the server key and certificate chain. */
  keystoreFile: string;
  /** PKCS12 truststore holding the CA certificate. */
  truststoreFile: string;
  /** Password of both stores (random per generation). */
  storePassword: string;
}

export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
}

async function run(tool: string, args: string[], cwd: string): Promise<void> {
  const res = await runCommand(tool, args, { cwd, timeoutMs: 60_000 });
  if (res.code !== 0) {
    const last = res.output.trim().split('\n').pop() ?? '';
    throw new TlsMaterialError(`${tool} ${args[0]} failed (exit ${res.code}) in ${cwd}: ${last.slice(0, 300)}`);
  }
}

/**
 * Writes a fresh CA (valid `days`) and a server certificate for `commonName` into `dir` (created if
 * missing). Needs `openssl` and the JDK's `keytool` on PATH (or given).
 */
export async function generateTlsMaterial(
  dir: string,
  opts: { commonName?: string; days?: number; openssl?: string; keytool?: string } = {},
): Promise<TlsMaterial> {
  const openssl = opts.openssl ?? 'openssl';
  const keytool = opts.keytool ?? 'keytool';
  const days = String(opts.days ?? 2);
  const cn = opts.commonName ?? 'localhost';
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => path.join(dir, name);
  const storePassword = randomBytes(18).toString('base64url');
  const passFile = f('store.pass');
  fs.writeFileSync(passFile, storePassword, { mode: 0o600 });

  await run(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', days, '-subj', '/CN=tributary test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await run(openssl, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${cn}`], dir);
  fs.writeFileSync(
    f('server.ext'),
    [`subjectAltName=IP:${LOCALHOST},DNS:localhost,DNS:${cn}`, 'extendedKeyUsage=serverAuth,clientAuth', 'keyUsage=critical,digitalSignature,keyEncipherment', ''].join('\n'),
  );
  await run(openssl, ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', days, '-extfile', f('server.ext')], dir);
  await run(openssl, ['pkcs12', '-export', '-in', f('server.pem'), '-inkey', f('server.key'), '-certfile', f('ca.pem'), '-name', 'server', '-out', f('keystore.p12'), '-passout', `file:${passFile}`], dir);
  await run(keytool, ['-importcert', '-noprompt', '-alias', 'ca', '-file', f('ca.pem'), '-keystore', f('truststore.p12'), '-storetype', 'PKCS12', '-storepass:file', passFile], dir);
  for (const key of ['ca.key', 'server.key']) fs.chmodSync(f(key), 0o600);

  return {
    dir,
    caFile: f('ca.pem'),
    certFile: f('server.pem'),
    keyFile: f('server.key'),
    keystoreFile: f('keystore.p12'),
    truststoreFile: f('truststore.p12'),
    storePassword,
  };
}
