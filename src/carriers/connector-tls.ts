import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../config/load.js';
import { readPemFile } from '../shared/pem-file.js';
import type { SmppConnectorConfig } from './config.js';

/**
 * A connector's `tls` setting as Node's TLS options: false for plain TCP, `true` as is (the system's
 * CAs), settings with their PEM files read now, so a wrong path stops the start rather than every bind.
 */
export function connectorTls(config: SmppConnectorConfig): ConnectionOptions | boolean {
  const t = config.tls;
  if (typeof t === 'boolean') return t;
  // A configuration error: `relais start` prints the sentence alone, with no stack.
  const pem = (key: string, path: string) => {
    try {
      return readPemFile(`connectors[${config.name}].tls.${key}`, path);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  };
  return {
    ...(t.ca_file ? { ca: pem('ca_file', t.ca_file) } : {}),
    ...(t.cert_file ? { cert: pem('cert_file', t.cert_file) } : {}),
    ...(t.key_file ? { key: pem('key_file', t.key_file) } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
    rejectUnauthorized: t.reject_unauthorized,
  };
}
