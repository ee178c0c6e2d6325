// The building blocks of the zod mirrors of vendor/instabase-api: the OpenAPI number formats and the
// components several resources share. Each resource's own mirrors sit with its declaration
// (../resources.ts). Objects are loose: a field Instabase adds tomorrow is kept for the dead-letter and
// the raw column, not stripped. Properties the spec does not list as required are optional; `nullable:
// true` becomes `.nullable()`.
import { z } from 'zod';
import type { SchemaIssue } from './errors.ts';
import { isRfc3339 } from './rfc3339.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const isIntegral = (v: number): boolean => Number.isInteger(v);

/**
 * `type: integer` with no format: any integer, however large. parseJson hands back bigint past 2^53, so
 * both representations are valid (a batch id, a document id or a page number may be either).
 */
export const zInteger = z.union([z.number().refine(isIntegral, 'expected an integer'), z.bigint()]);
/**
 * `format: int64`: integers in the int64 range, as number or (past 2^53; run timestamps are nanoseconds)
 * bigint. Anything outside the int64 range is not.
 */
export const zInt64 = z.union([
  z
    .number()
    .refine(
      (v) => isIntegral(v) && v >= Number(INT64_MIN) && v < Number(INT64_MAX),
      'expected an int64 integer',
    ),
  z.bigint().min(INT64_MIN).max(INT64_MAX),
]);
/**
 * `type: number` (with or without format float/double): any JSON number, including one written as a long
 * integer literal (10000000000000000), which parseJson returns as bigint to keep it exact.
 */
export const zNumber = z.union([z.number(), z.bigint()]);
/** `format: date-time`: RFC 3339 exactly (lowercase t/z and leap seconds included; ./rfc3339.ts). */
export const zDateTime = z.string().refine(isRfc3339, 'expected an RFC 3339 date-time');

export const opt = <T extends z.ZodType>(t: T) => t.optional();
export const optNull = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const errorBody = z.looseObject({ message: opt(z.string()) });

export const batch = z.looseObject({ id: zInteger });

export const modificationObject = z.looseObject({
  timestamp: z.string(),
  user_id: z.string(),
  // openapi.yaml made message nullable; the 2026-01-15 file still required it.
  modifications: opt(z.array(z.looseObject({ message: optNull(z.string()) }))),
});

/**
 * HEAD /v2/files/{path} has no body; the client builds this record from the response headers. `type`
 * follows the documented Content-Type convention (folder: application/json, file: octet-stream).
 */
export const fileMetadata = z.object({
  path: z.string(),
  exists: z.boolean(),
  type: z.enum(['file', 'folder']).nullable(),
  content_type: z.string().nullable(),
  content_length: zInt64.nullable(),
  last_modified: z.string().nullable(),
  /** last-modified as epoch ms; the spec says date-time, HTTP says HTTP-date, both are read. */
  last_modified_ms: zInteger.nullable(),
});

export type FileMetadata = z.infer<typeof fileMetadata>;

// Response shapes the project does not poll; mirrored so every example in the spec files is checked.
export const multipartUploadSessionResponse = z.looseObject({
  session_id: z.string(),
  part_size: zInteger,
});

/** zod issues as plain data: path, code and message, safe to log and to put in a dead letter. */
export function toIssues(error: z.ZodError): SchemaIssue[] {
  return error.issues.map((i) => ({
    path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
    code: i.code,
    message: i.message,
  }));
}
