// TLS for the public port (NIM_SSL_MODE): read and check the key, certificate
// and CA files up front, so a wrong path or a key that does not match its
// certificate stops the supervisor with one clear line instead of failing the
// first handshake.
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { TlsConfig } from '../config/env.js';
import { ConfigError } from '../errors.js';

function readPem(variable: string, file: string | undefined, mode: string): Buffer {
  if (!file) throw new ConfigError(`NIM_SSL_MODE=${mode} needs ${variable}`, { hint: `set ${variable} to a PEM file` });
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`${variable}=${JSON.stringify(file)} cannot be read: ${code}`, { hint: 'check the path and its permissions' });
  }
}

/** https.ServerOptions for the configured mode, or undefined for plain HTTP. */
export function loadTlsOptions(tls: TlsConfig): ServerOptions | undefined {
  if (tls.mode === 'DISABLED') return undefined;
  const key = readPem('NIM_SSL_KEY_PATH', tls.keyPath, tls.mode);
  const cert = readPem('NIM_SSL_CERTS_PATH', tls.certPath, tls.mode);
  const ca = tls.mode === 'MTLS' ? readPem('NIM_SSL_CA_CERTS_PATH', tls.caPath, tls.mode) : undefined;
  try {
    // Throws on unparsable PEM and on a key that does not match the certificate.
    createSecureContext({ key, cert, ...(ca ? { ca } : {}) });
  } catch (err) {
    const reason = (err as Error).message;
    const mismatch = /key values mismatch|KEY_VALUES_MISMATCH/i.test(reason);
    throw new ConfigError(
      mismatch
        ? `NIM_SSL_KEY_PATH (${tls.keyPath}) does not match the certificate in NIM_SSL_CERTS_PATH (${tls.certPath})`
        : `the TLS files are not valid PEM (NIM_SSL_KEY_PATH=${tls.keyPath}, NIM_SSL_CERTS_PATH=${tls.certPath}${ca ? `, NIM_SSL_CA_CERTS_PATH=${tls.caPath}` : ''}): ${reason}`,
      { hint: 'point the variables at the matching PEM key and certificate' },
    );
  }
  return {
    key,
    cert,
    ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
  };
}
