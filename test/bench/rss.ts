import { readFileSync } from 'node:fs';

/** RssAnon and RssFile of this process in bytes, or undefined without /proc. */
export function rssParts(): { anon: number; file: number } | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const anon = kb('RssAnon');
    const file = kb('RssFile');
    return Number.isNaN(anon) || Number.isNaN(file) ? undefined : { anon: anon * 1024, file: file * 1024 };
  } catch {
    return undefined;
  }
}
