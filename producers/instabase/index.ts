// Public surface of the Instabase AI Hub client: import from here, not from the modules.
export {
  InstabaseClient,
  DEFAULT_CLIENT_OPTIONS,
  type InstabaseClientOptions,
  type RequestSpec,
  type ApiResponse,
  type QueryParams,
  type QueryValue,
} from './client.ts';
export * from './errors.ts';
export { parseJson, stringifyJson, JsonSyntaxError } from './json.ts';
export { fullJitterDelay, parseRetryAfter, retryDelay } from './retry.ts';
export { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
export * as schemas from './schemas.ts';
export { childPathParams, type PaginatorSpec, type PaginatorKind, type ResourceSpec } from './resource.ts';
export {
  walk,
  records,
  poll,
  fileMetadataFromHeaders,
  type Page,
  type PagePosition,
  type RecordItem,
  type ValidRecord,
  type InvalidRecord,
  type WalkParams,
  type WalkSummary,
  type PollOptions,
} from './paginators.ts';
