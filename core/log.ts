import { pino, destination as pinoDestination, type Logger, type DestinationStream } from 'pino';
import { redact } from './secrets.ts';

export type { Logger };

const LEVEL = process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info');

/**
 * Structured JSON logs. Every serialized line passes through `redact`, so a secret that reaches a log
 * call by any path (an error message, a URL, a header) is replaced before it is written.
 */
export function createLogger(name: string, destination?: DestinationStream, level: string = LEVEL): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['*.authorization', '*.Authorization', '*.password', '*.token', 'headers.authorization'],
        censor: '***',
      },
      hooks: { streamWrite: (line: string) => redact(line) },
    },
    // stderr, so that a command's own output on stdout (status, config) stays clean for pipes.
    destination ?? pinoDestination(2),
  );
}

export const rootLogger = createLogger('instabase-stream');
