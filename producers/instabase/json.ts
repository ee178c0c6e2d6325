// JSON that keeps int64 values exact. Run timestamps are Unix nanoseconds (~1.7e18), far past 2^53, so
// JSON.parse would silently round them. Integers outside the safe range come back as bigint; every other
// value is exactly what JSON.parse gives.

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
  constructor(
    message: string,
    readonly position: number,
    /** The text ended before the value was complete: the usual sign of a cut-off body. */
    readonly truncated: boolean,
  ) {
    super(message);
  }
}

// A safe integer has at most 16 digits, so a text without a run of 16 digits cannot hold an unsafe one
// and the native parser is both faster and exact.
const LONG_DIGIT_RUN = /\d{16}/;

export function parseJson(text: string): unknown {
  if (!LONG_DIGIT_RUN.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // Fall through: the slow parser reports where and whether the text was cut off.
    }
  }
  return new LosslessParser(text).parseDocument();
}

class LosslessParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    this.ws();
    const value = this.value();
    this.ws();
    if (this.pos < this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  private fail(what: string): never {
    const truncated = this.pos >= this.text.length;
    throw new JsonSyntaxError(
      truncated ? `JSON ends early at position ${this.pos}` : `${what} at position ${this.pos}`,
      this.pos,
      truncated,
    );
  }

  private ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  private value(): unknown {
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail('unexpected character');
    }
  }

  private literal<T>(word: string, value: T): T {
    for (let i = 0; i < word.length; i++) {
      if (this.text[this.pos] !== word[i]) this.fail(`invalid literal, expected ${word}`);
      this.pos++;
    }
    return value;
  }

  private object(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.pos++;
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail('expected a property name');
      const key = this.string();
      this.ws();
      if (this.text[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.ws();
      const v = this.value();
      // defineProperty, because assigning "__proto__" would replace the prototype instead of adding a key.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.text[this.pos];
      this.pos++;
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }

  private array(): unknown[] {
    const out: unknown[] = [];
    this.pos++;
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value());
      this.ws();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  private string(): string {
    const t = this.text;
    const start = ++this.pos;
    // Fast path: no escapes.
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        const s = t.slice(start, this.pos);
        this.pos++;
        return s;
      }
      if (c === 0x5c) break;
      if (c < 0x20) this.fail('control character in string');
      this.pos++;
    }
    let out = t.slice(start, this.pos);
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t[this.pos]!;
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        this.pos++;
        const e = t[this.pos];
        this.pos++;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out += e;
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = t.slice(this.pos, this.pos + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
              if (this.pos + 4 > t.length) this.pos = t.length;
              this.fail('invalid unicode escape');
            }
            out += String.fromCharCode(parseInt(hex, 16));
            this.pos += 4;
            break;
          }
          default:
            this.pos--;
            this.fail('invalid escape');
        }
        continue;
      }
      if (c.charCodeAt(0) < 0x20) this.fail('control character in string');
      out += c;
      this.pos++;
    }
  }

  private number(): number | bigint {
    const t = this.text;
    const start = this.pos;
    if (t[this.pos] === '-') this.pos++;
    if (t[this.pos] === '0') this.pos++;
    else if (this.digits() === 0) this.fail('invalid number');
    let integer = true;
    if (t[this.pos] === '.') {
      integer = false;
      this.pos++;
      if (this.digits() === 0) this.fail('invalid number');
    }
    if (t[this.pos] === 'e' || t[this.pos] === 'E') {
      integer = false;
      this.pos++;
      if (t[this.pos] === '+' || t[this.pos] === '-') this.pos++;
      if (this.digits() === 0) this.fail('invalid number');
    }
    const raw = t.slice(start, this.pos);
    const n = Number(raw);
    if (integer && !Number.isSafeInteger(n)) return BigInt(raw);
    return n;
  }

  private digits(): number {
    const start = this.pos;
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c >= 0x30 && c <= 0x39) this.pos++;
      else break;
    }
    return this.pos - start;
  }
}

/**
 * JSON.stringify semantics, except that bigint values are written as exact integer literals (the inverse
 * of parseJson). Hand-written because a replacer cannot emit raw digits without a sentinel that some
 * string could collide with.
 */
export function stringifyJson(value: unknown): string {
  return write(value, '') ?? 'null';
}

function write(value: unknown, key: string): string | undefined {
  let v = value;
  if (typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON: (k: string) => unknown }).toJSON(key);
  }
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) return `[${v.map((x, i) => write(x, String(i)) ?? 'null').join(',')}]`;
      const parts: string[] = [];
      for (const k of Object.keys(v)) {
        const s = write((v as Record<string, unknown>)[k], k);
        if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined;
  }
}
