import { pino, destination as pinoDestination, type Logger, type DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';
import { redact } from './secrets.ts';

export type { Logger };

const LEVEL = process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info');

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * LOG_FORMAT, or else readable lines for a person at a terminal and JSON for everything else (daemons,
 * pipes, log shippers). An unknown value is reported by the config check; here it falls back to JSON.
 */
export function logFormat(
  env: NodeJS.ProcessEnv = process.env,
  isTty: boolean = process.stderr.isTTY === true,
): LogFormat {
  const wanted = env.LOG_FORMAT;
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  return isTty && !wanted ? 'pretty' : 'json';
}

function prettyStream(): DestinationStream {
  return pinoPretty({
    destination: 2,
    sync: true,
    colorize: process.stderr.isTTY === true,
    translateTime: 'SYS:HH:MM:ss',
    // A person reads the error's message on the same line; the stack stays in the JSON format.
    ignore: 'pid,hostname,name,err',
    messageFormat: (log, messageKey) => {
      const err = log['err'] as { message?: unknown } | undefined;
      const message = String(log[messageKey] ?? '');
      return err?.message ? `${message}: ${String(err.message)}` : message;
    },
    singleLine: true,
  });
}

/**
 * Structured logs: JSON, or one readable line per entry (LOG_FORMAT=pretty). Every serialized line
 * passes through `redact` before it reaches either, so a secret that reaches a log call by any path
 * (an error message, a URL, a header) is replaced before it is written.
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
    destination ?? (logFormat() === 'pretty' ? prettyStream() : pinoDestination(2)),
  );
}

export const rootLogger = createLogger('instabase-stream');
