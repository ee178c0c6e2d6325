import { readFileSync } from 'node:fs';

export interface TlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  rejectUnauthorized?: boolean | undefined;
}

/** Node TLS options from file paths; hostname verification stays on unless explicitly disabled. */
export function tlsOptionsFromFiles(files: TlsFiles): {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
} {
  return {
    ...(files.caFile ? { ca: readFileSync(files.caFile, 'utf8') } : {}),
    ...(files.certFile ? { cert: readFileSync(files.certFile, 'utf8') } : {}),
    ...(files.keyFile ? { key: readFileSync(files.keyFile, 'utf8') } : {}),
    rejectUnauthorized: files.rejectUnauthorized ?? true,
  };
}
