/**
 * The README's configuration table, generated from the config schema (core/config.ts) so that the two
 * cannot drift: keys and defaults are read from the schema, descriptions from its `.describe()` texts,
 * env vars from its env → path table. `npm run docs:config` (this file with `--write`) rewrites the
 * section of README.md between the config-table markers; test/unit/core/config-docs.test.ts fails
 * when that section is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { z } from 'zod';
import { PACKAGE_ROOT } from './package-root.ts';
import { configSchema, ENV_PATHS, SECRET_PATHS } from './config.ts';

export const README_PATH = join(PACKAGE_ROOT, 'README.md');
export const START_MARKER = '<!-- config-table:start -->';
export const END_MARKER = '<!-- config-table:end -->';

type Schema = z.core.$ZodType;

export interface ConfigRow {
  /** Dotted path as written in the config file; a record's keys appear as `<key>` (or its meta title). */
  key: string;
  envVars: string[];
  secret: boolean;
  /** As shown in the table: computed from the schema's defaults, never the value of a secret. */
  defaultText: string;
  /** Empty when the schema has none; configTableMarkdown refuses to render such a row. */
  description: string;
}

export interface DocsSource {
  schema: Schema;
  envPaths: ReadonlyArray<readonly [env: string, path: string]>;
  secretPaths: readonly string[];
}

const CONFIG_SOURCE: DocsSource = { schema: configSchema, envPaths: ENV_PATHS, secretPaths: SECRET_PATHS };

function describedAs(schema: Schema): string | undefined {
  return z.globalRegistry.get(schema)?.description;
}

/**
 * Strips default/prefault/optional/nullable wrappers. `.describe()` may sit on any of them (it is usually
 * the last call, so the outermost), hence the first description found from the outside wins.
 */
function unwrap(schema: Schema): { inner: Schema; description: string | undefined } {
  let node = schema;
  let description = describedAs(node);
  for (;;) {
    if (
      node instanceof z.core.$ZodDefault ||
      node instanceof z.core.$ZodPrefault ||
      node instanceof z.core.$ZodOptional ||
      node instanceof z.core.$ZodNullable
    ) {
      node = node._zod.def.innerType;
      description ??= describedAs(node);
    } else {
      return { inner: node, description };
    }
  }
}

/** The object shapes a node stands for: one for an object, one per option for a union of objects. */
function objectShapes(node: Schema): Array<Record<string, Schema>> | undefined {
  if (node instanceof z.core.$ZodObject) return [node._zod.def.shape];
  if (node instanceof z.core.$ZodUnion) {
    const shapes = node._zod.def.options.map((option) => objectShapes(unwrap(option).inner));
    if (shapes.every((s): s is Array<Record<string, Schema>> => s !== undefined)) return shapes.flat();
  }
  return undefined;
}

interface Leaf {
  path: string[];
  schema: Schema;
  description: string | undefined;
}

function leaves(schema: Schema, path: string[], out: Leaf[]): void {
  const { inner, description } = unwrap(schema);
  const shapes = objectShapes(inner);
  if (shapes) {
    // The options of a union share some keys (the discriminator at least): one row per key, in first-seen
    // order, described by the first option that describes it.
    const merged = new Map<string, Schema[]>();
    for (const shape of shapes) {
      for (const [key, child] of Object.entries(shape)) merged.set(key, [...(merged.get(key) ?? []), child]);
    }
    for (const [key, variants] of merged) {
      const sub: Leaf[] = [];
      for (const variant of variants) leaves(variant, [...path, key], sub);
      for (const leaf of sub) {
        const known = out.find((l) => l.path.join('.') === leaf.path.join('.'));
        if (!known) out.push(leaf);
        else known.description ??= leaf.description;
      }
    }
    return;
  }
  if (inner instanceof z.core.$ZodRecord) {
    // One row for all of a record's keys; its description is the record's own (or its values').
    const title = z.globalRegistry.get(inner._zod.def.keyType)?.title ?? 'key';
    const value = unwrap(inner._zod.def.valueType);
    out.push({
      path: [...path, `<${title}>`],
      schema: value.inner,
      description: description ?? value.description,
    });
    return;
  }
  out.push({ path, schema: inner, description });
}

function valueAt(obj: unknown, path: string[]): unknown {
  return path.reduce<unknown>(
    (node, key) =>
      typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined,
    obj,
  );
}

const code = (value: string): string => `\`${value}\``;

const DURATION_UNITS: Array<[ms: number, unit: string]> = [
  [24 * 3_600_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
];

/** Long durations and sizes also in a unit a person reads at a glance; the raw number stays first. */
function numberText(key: string, value: number): string {
  if (key.endsWith('Ms')) {
    for (const [ms, unit] of DURATION_UNITS) {
      if (value >= ms && value % ms === 0) {
        const n = value / ms;
        return `${value} (${n} ${unit}${n === 1 ? '' : 's'})`;
      }
    }
  }
  if (key.endsWith('Bytes') && value >= 1024 * 1024 && value % (1024 * 1024) === 0) {
    return `${value} (${value / (1024 * 1024)} MiB)`;
  }
  return String(value);
}

function defaultText(key: string, schema: Schema, value: unknown, secret: boolean): string {
  if (value === undefined) return '—';
  if (value === '') return 'empty';
  // A secret never has its value printed, not even a default someone might add one day.
  if (secret) return '***';
  if (typeof value === 'string' || typeof value === 'boolean') return code(String(value));
  if (typeof value === 'number') return numberText(key, value);
  if (Array.isArray(value)) {
    if (value.length === 0) return code('[]');
    // "all 9" rather than nine names when the default is every value an enum allows.
    const element = schema instanceof z.core.$ZodArray ? unwrap(schema._zod.def.element).inner : undefined;
    if (element instanceof z.core.$ZodEnum) {
      const allowed = Object.values(element._zod.def.entries);
      if (allowed.length > 1 && allowed.every((a) => value.includes(a))) return `all ${allowed.length}`;
    }
    return value.map((v) => code(String(v))).join(', ');
  }
  return code(JSON.stringify(value));
}

/** One row per leaf key of the schema, in the schema's order. */
export function configRows(source: DocsSource = CONFIG_SOURCE): ConfigRow[] {
  const found: Leaf[] = [];
  leaves(source.schema, [], found);
  const defaults = z.parse(source.schema, {});
  return found.map(({ path, schema, description }) => {
    const key = path.join('.');
    const secret = source.secretPaths.includes(key);
    return {
      key,
      envVars: source.envPaths.filter(([, p]) => p === key).map(([env]) => env),
      secret,
      defaultText: defaultText(key, schema, valueAt(defaults, path), secret),
      description: description?.trim() ?? '',
    };
  });
}

const cell = (text: string): string => text.replaceAll('|', '\\|');

/** The generated section (without its markers), formatted as prettier formats README.md. */
export async function configTableMarkdown(source: DocsSource = CONFIG_SOURCE): Promise<string> {
  const rows = configRows(source);
  const undescribed = rows.filter((r) => r.description === '').map((r) => r.key);
  if (undescribed.length) {
    throw new Error(
      `config keys without a description (add .describe() in core/config.ts): ${undescribed.join(', ')}`,
    );
  }
  const lines = [
    'Generated from the schema in [core/config.ts](core/config.ts) by `npm run docs:config`; edit the',
    'descriptions there, not here. A secret may instead be read from the file named by its `<VAR>_FILE`.',
    '',
    '| config key | env var | default | what |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => {
      const env = r.envVars.map(code).join(', ') + (r.secret && r.envVars.length ? ' (`_FILE`)' : '');
      const what = (r.secret ? '**secret**; ' : '') + r.description;
      return `| ${[code(r.key), env, r.defaultText, what].map(cell).join(' | ')} |`;
    }),
  ];
  const options = (await resolveConfig(README_PATH)) ?? {};
  return format(lines.join('\n') + '\n', { ...options, parser: 'markdown' });
}

/** README text with the section between the markers replaced by `table`. */
export function replaceSection(readme: string, table: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < start) {
    throw new Error(`README.md needs ${START_MARKER} and ${END_MARKER}, in that order, around the table`);
  }
  return `${readme.slice(0, start + START_MARKER.length)}\n\n${table}\n${readme.slice(end)}`;
}

/** The text between the markers, as replaceSection writes it (without the blank lines around it). */
export function currentSection(readme: string): string | undefined {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < start) return undefined;
  return readme
    .slice(start + START_MARKER.length, end)
    .replace(/^\n+/, '')
    .replace(/\n+$/, '\n');
}

async function main(argv: string[]): Promise<void> {
  const table = await configTableMarkdown();
  if (!argv.includes('--write')) {
    process.stdout.write(table);
    return;
  }
  const readme = readFileSync(README_PATH, 'utf8');
  const updated = replaceSection(readme, table);
  if (updated === readme) {
    process.stderr.write('README.md: configuration table already up to date\n');
    return;
  }
  writeFileSync(README_PATH, updated);
  process.stderr.write('README.md: configuration table rewritten from core/config.ts\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
