import { readFileSync } from 'node:fs';

export interface TlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** Passphrase of an encrypted private key. */
  keyPassword?: string | undefined;
  rejectUnauthorized?: boolean | undefined;
}

export interface NodeTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  rejectUnauthorized: boolean;
}

function read(what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read the TLS ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
}

/**
 * Node TLS options from file paths. The CA bundle replaces Node's built-in roots for that connection
 * (a private CA, as managed services with public certificates need no caFile). Hostname and chain
 * verification stay on unless explicitly disabled.
 */
export function tlsOptionsFromFiles(files: TlsFiles): NodeTlsOptions {
  return {
    ...(files.caFile ? { ca: read('CA', files.caFile) } : {}),
    ...(files.certFile ? { cert: read('certificate', files.certFile) } : {}),
    ...(files.keyFile ? { key: read('key', files.keyFile) } : {}),
    ...(files.keyPassword ? { passphrase: files.keyPassword } : {}),
    rejectUnauthorized: files.rejectUnauthorized ?? true,
  };
}
