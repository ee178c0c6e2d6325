/**
 * ClickHouse error codes that mean the insert itself is wrong (a row, a type, a missing table), so
 * retrying cannot help. Every other failure (connection refused, timeouts, too many parts, memory) is
 * transient: the sink backs off and retries without committing offsets.
 */
const PERMANENT_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  16, // NO_SUCH_COLUMN_IN_TABLE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  44, // ILLEGAL_COLUMN
  53, // TYPE_MISMATCH
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  81, // UNKNOWN_DATABASE
  115, // UNKNOWN_SETTING
  117, // INCORRECT_DATA
  130, // CANNOT_READ_ARRAY_FROM_TEXT
  131, // TOO_LARGE_STRING_SIZE
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

export function clickhouseErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  if (typeof code === 'number') return code;
  const match = /Code:\s*(\d+)/.exec(String((err as Error)?.message ?? ''));
  return match ? Number(match[1]) : undefined;
}

export function isPermanentClickHouseError(err: unknown): boolean {
  const code = clickhouseErrorCode(err);
  return code !== undefined && PERMANENT_CODES.has(code);
}
