// The shape of an endpoint: what to request, how it pages, where its records sit in the body, and which
// resource's records fill its path. Declared as data (in the spirit of dlt's rest_api config) so one
// generic walker serves every endpoint; how the producers key and follow each resource is declared on
// top of it (../resources.ts).
import type { z } from 'zod';
import type { ResourceName } from '../../core/resources.ts';
import type { QueryParams } from './client.ts';
import type { HttpMethod } from './http.ts';

export type PaginatorSpec =
  /**
   * ?limit=&offset=; the walk ends on an empty page only, never on a short one (a server may cap the
   * page size below the limit asked for).
   */
  | { kind: 'offset'; limitParam: string; offsetParam: string; pageSize: number }
  /** The body says has_more; the next request asks for offsetParam = previous offset + records received. */
  | { kind: 'has_more'; offsetParam: string; hasMoreField: string }
  /** Offset and size travel in the JSON request body (POST /v1/auditlogs); ends on an empty page. */
  | { kind: 'body_offset'; startField: string; sizeField: string; pageSize: number }
  /**
   * The body says has_more and hands a token; the next request sends it back as tokenParam. The first
   * request sends none. Positions still count records (offset), so record indexes stay positional.
   */
  | {
      kind: 'token';
      tokenParam: string;
      nextTokenField: string;
      hasMoreField: string;
      sizeParam: string;
      pageSize: number;
    }
  /** One request, one object: the body (or the selected part) is the record. */
  | { kind: 'single' }
  /** One request, a list of any length, no paging parameters. */
  | { kind: 'none' };

export type PaginatorKind = PaginatorSpec['kind'];

export interface ResourceSpec<R = unknown> {
  /** Resource name as in CONVENTIONS.md (topic and table name). */
  name: string;
  method: HttpMethod;
  /** Path template below the base URL. */
  path: string;
  /** Path parameters that may contain '/' (file paths). */
  multiSegmentParams?: readonly string[];
  paginator: PaginatorSpec;
  /**
   * Dotted path to the record list in the body ('batches', 'data.results'); '' means the whole body is
   * the one record. For 'single' a non-empty selector picks one object.
   */
  dataSelector: string;
  /**
   * Whether a body without the record list means "no records". The spec makes every list key optional
   * (`batches`, `runs`, `conversations`, `data` and `data.results`, a conversation's `documents`, a run's
   * `files`), so every list resource declares it: `{}` is an empty page, not an error.
   */
  dataOptional?: boolean;
  /**
   * When the record list is absent, `field` of the body must be absent or one of `values`. The audit log
   * API answers some failures with a 200, another status and no data; taking that for an empty page
   * would move the watermark past entries never read. It is a schema error instead (dead-lettered, and
   * the poll is retried).
   */
  absentListStatus?: { field: string; values: readonly string[] };
  /** Validates one record. Records are validated one by one so one bad record spoils nothing else. */
  record: z.ZodType<R>;
  /** Validates the rest of the body (the selected records are removed first). */
  envelope?: z.ZodType;
  /**
   * For per-parent endpoints: the parent resource and where each path parameter comes from. A value
   * 'id' reads the parent record's field; '^conversation_id' reads the parent's own path parameter.
   */
  parent?: { resource: ResourceName; pathParams: Readonly<Record<string, string>> };
  /** Query or body defaults sent on every request. */
  defaultQuery?: QueryParams;
  defaultBody?: Readonly<Record<string, unknown>>;
  /** For polled resources: the record is final once `field` holds one of `values`. */
  terminal?: { field: string; values: readonly string[] };
  /** Where the contract lives, for contract tests and for humans. */
  contract: { file: 'openapi.yaml' | 'openapi-2026-01-15.yaml'; operationId: string };
}

/** The path parameters of a child request, from a parent record and the parent's own path parameters. */
export function childPathParams(
  child: ResourceSpec,
  parentRecord: Record<string, unknown>,
  parentPathParams: Readonly<Record<string, string | number | bigint>> = {},
): Record<string, string | number | bigint> {
  if (!child.parent) throw new Error(`${child.name} has no parent`);
  const out: Record<string, string | number | bigint> = {};
  for (const [param, source] of Object.entries(child.parent.pathParams)) {
    const v = source.startsWith('^') ? parentPathParams[source.slice(1)] : parentRecord[source];
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint') {
      throw new Error(
        `${child.name}: cannot fill {${param}} from parent ${child.parent.resource} (${source})`,
      );
    }
    out[param] = v;
  }
  return out;
}
