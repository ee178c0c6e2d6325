// Loads the Instabase OpenAPI files and turns their schemas into validators for ajv, a validator that
// shares no code with the client's zod schemas. OpenAPI 3.0 is close to JSON Schema draft 4/7; the
// differences handled here are `nullable`, `$ref` into components, the int32/int64/float/double formats
// and annotation keywords ajv's strict mode rejects (example, x-*).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

export const SPEC_FILES = ['openapi.yaml', 'openapi-2026-01-15.yaml'] as const;
export type SpecFile = (typeof SPEC_FILES)[number];

/** The repository's vendored copy (vendor/instabase-api/README.md says where it came from); INSTABASE_OPENAPI_DIR overrides. */
export const SPEC_DIR =
  process.env.INSTABASE_OPENAPI_DIR ?? fileURLToPath(new URL('../../vendor/instabase-api/', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Doc = { [k: string]: Json };

/**
 * YAML with integers past 2^53 kept exact as bigint (the spec's examples hold nanosecond timestamps),
 * and every safe integer a plain number: the same convention as the client's JSON parser.
 */
export function loadSpec(file: SpecFile): Doc {
  const path = `${SPEC_DIR}/${file}`;
  if (!existsSync(path)) throw new Error(`OpenAPI file not found: ${path} (set INSTABASE_OPENAPI_DIR)`);
  return normalizeInts(parse(readFileSync(path, 'utf8'), { intAsBigInt: true })) as Doc;
}

function normalizeInts(v: unknown): unknown {
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(normalizeInts);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalizeInts(x)]));
  return v;
}

const ANNOTATIONS = new Set([
  'description',
  'example',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'externalDocs',
  'xml',
  'title',
]);

/** OpenAPI 3.0 schema object → JSON Schema ajv accepts in strict mode. */
export function toJsonSchema(schema: Json, file: string): Json {
  if (Array.isArray(schema)) return schema.map((s) => toJsonSchema(s, file));
  if (schema === null || typeof schema !== 'object') return schema;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(schema)) {
    if (ANNOTATIONS.has(k) || k.startsWith('x-') || k === 'nullable') continue;
    if (k === '$ref' && typeof v === 'string') {
      out.$ref = v.replace('#/components/schemas/', `${file}#/definitions/`);
      continue;
    }
    if (k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
      out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, toJsonSchema(s, file)]));
      continue;
    }
    out[k] = toJsonSchema(v, file);
  }
  if (schema.nullable === true) {
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    } else {
      // OpenAPI 3.0 ignores siblings of $ref, but the spec's intent (chosen_field) is "this or null".
      return { anyOf: [out, { type: 'null' }] };
    }
  }
  // Keywords beside $ref are ignored by draft-07; make them count.
  if (typeof out.$ref === 'string' && Object.keys(out).length > 1) {
    const { $ref, ...rest } = out;
    return { allOf: [{ $ref }, rest] };
  }
  return out;
}

const INT64 = 2 ** 63;

export function createAjv(): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true, strictTypes: false });
  const addFormats = addFormatsModule as unknown as (a: Ajv) => Ajv;
  addFormats(ajv);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  // JSON.parse turns 2^63-1 into the double 2^63, so the bound is inclusive.
  ajv.addFormat('int64', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -INT64 && n <= INT64,
  });
  // JSON has no float32; "float" and "double" are hints about precision, not ranges to enforce.
  ajv.addFormat('float', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('binary', true);
  return ajv;
}

export interface Operation {
  file: SpecFile;
  method: string;
  path: string;
  operationId: string;
  raw: Doc;
}

export class Contract {
  readonly ajv = createAjv();
  readonly docs = new Map<SpecFile, Doc>();
  private readonly cache = new Map<string, ValidateFunction>();

  constructor() {
    for (const file of SPEC_FILES) {
      const doc = loadSpec(file);
      this.docs.set(file, doc);
      const schemas = ((doc.components as Doc | undefined)?.schemas ?? {}) as Doc;
      const definitions = Object.fromEntries(
        Object.entries(schemas).map(([n, s]) => [n, toJsonSchema(s, file)]),
      );
      this.ajv.addSchema({ $id: file, definitions }, file);
    }
  }

  /** The spec files that describe method+path (a path template as written in the spec). */
  filesFor(method: string, path: string): SpecFile[] {
    return SPEC_FILES.filter((f) => {
      const paths = this.docs.get(f)!.paths as Doc;
      return Boolean((paths[path] as Doc | undefined)?.[method.toLowerCase()]);
    });
  }

  operation(file: SpecFile, method: string, path: string): Operation {
    const op = ((this.docs.get(file)!.paths as Doc)[path] as Doc | undefined)?.[method.toLowerCase()] as
      Doc | undefined;
    if (!op) throw new Error(`${file} has no ${method} ${path}`);
    return { file, method, path, operationId: String(op.operationId), raw: op };
  }

  /** The validator of a JSON response body for a status ('200', or 'default' for errors). */
  responseValidator(file: SpecFile, method: string, path: string, status: string): ValidateFunction {
    const key = `${file} ${method} ${path} ${status}`;
    let v = this.cache.get(key);
    if (!v) {
      const responses = this.operation(file, method, path).raw.responses as Doc;
      const res = (responses[status] ?? responses.default) as Doc | undefined;
      const schema = ((res?.content as Doc | undefined)?.['application/json'] as Doc | undefined)?.schema;
      if (schema !== undefined) v = this.ajv.compile(toJsonSchema(schema, file) as object);
      // A few operations (listBatches) document no error response; every other one uses `error`.
      else if (status !== '200') v = this.componentValidator(file, 'error');
      else throw new Error(`${file} ${method} ${path} ${status}: no JSON schema`);
      this.cache.set(key, v);
    }
    return v;
  }

  /** Validator of a named component schema. */
  componentValidator(file: SpecFile, name: string): ValidateFunction {
    const key = `${file} #${name}`;
    let v = this.cache.get(key);
    if (!v) {
      v = this.ajv.compile({ $ref: `${file}#/definitions/${name}` });
      this.cache.set(key, v);
    }
    return v;
  }

  /** The header schemas of a response, e.g. HEAD /v2/files/{path} 200. */
  responseHeaders(
    file: SpecFile,
    method: string,
    path: string,
    status: string,
  ): Record<string, ValidateFunction> {
    const responses = this.operation(file, method, path).raw.responses as Doc;
    const headers = ((responses[status] as Doc | undefined)?.headers ?? {}) as Doc;
    const out: Record<string, ValidateFunction> = {};
    for (const [name, h] of Object.entries(headers)) {
      out[name.toLowerCase()] = this.ajv.compile(toJsonSchema((h as Doc).schema ?? {}, file) as object);
    }
    return out;
  }
}

export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? e.keyword}`).join('; ');
}

export interface FoundExample {
  file: SpecFile;
  /** JSON pointer segments to the example. */
  at: (string | number)[];
  value: unknown;
}

/** Every `example`, `examples` value and x-fern-examples response body in a spec document. */
export function findExamples(file: SpecFile, doc: Doc): FoundExample[] {
  const out: FoundExample[] = [];
  const walk = (node: unknown, at: (string | number)[]) => {
    if (Array.isArray(node)) {
      node.forEach((x, i) => walk(x, [...at, i]));
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      const here = [...at, k];
      // A property *named* "example" inside `properties` is a schema, not an example.
      const isKeyword = at[at.length - 1] !== 'properties';
      if (isKeyword && k === 'example') out.push({ file, at: here, value: v });
      else if (isKeyword && k === 'examples' && v && typeof v === 'object' && !Array.isArray(v)) {
        for (const [name, ex] of Object.entries(v))
          out.push({ file, at: [...here, name], value: (ex as Doc).value ?? ex });
      } else if (k === 'body' && at[at.length - 1] === 'response' && at.includes('x-fern-examples')) {
        out.push({ file, at: here, value: v });
      }
      walk(v, here);
    }
  };
  walk(doc, []);
  return out;
}
