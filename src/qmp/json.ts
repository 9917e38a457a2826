/**
 * The JSON dialect of QMP: a hardened parser and QEMU-style serializer.
 *
 * The parser follows QEMU's (`qobject/json-parser.c`, `json-lexer.c`): RFC 8259 plus single-quoted strings and
 * the `\'` escape; duplicate keys are an error; integers that do not fit a double exactly come back as `bigint`
 * (QEMU keeps them as int64/uint64); error messages start with "JSON parse error, " as QEMU's do. Objects are
 * created without a prototype by default, so `__proto__` and `constructor` are ordinary keys that nothing
 * inherits from, and nesting is capped.
 *
 * @module
 */

/** A JSON value as the parser returns it. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;

/** A JSON object as the parser returns it (no prototype when parsed with `nullPrototype`). */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Options of {@link parseJson}. */
export interface ParseJsonOptions {
  /** Maximum nesting of objects and arrays. Default 64. */
  readonly maxDepth: number;
  /**
   * Create objects with `Object.create(null)` (default `true`). With `false` objects are ordinary, and a
   * `__proto__` key becomes an own data property, as with `JSON.parse`.
   */
  readonly nullPrototype: boolean;
}

/** Default {@link ParseJsonOptions.maxDepth}: QMP arguments nest at most ~6 levels; QEMU allows 1024. */
export const DEFAULT_MAX_DEPTH = 64;

/** A syntax error in QMP input; `message` is the QMP `desc` ("JSON parse error, ..."). */
export class JsonSyntaxError extends SyntaxError {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, "name", { value: "JsonSyntaxError", enumerable: false, configurable: true });
  }
}

/** The message QEMU uses when nesting is too deep. */
export const NESTING_ERROR = "JSON nesting depth limit exceeded";

const C_SPACE = 0x20;
const C_TAB = 0x09;
const C_LF = 0x0a;
const C_CR = 0x0d;
const C_BACKSLASH = 0x5c;

/**
 * Parses one QMP JSON text.
 *
 * @param text The complete text of one value.
 * @param options Depth cap and object prototype.
 * @returns The value.
 * @throws {JsonSyntaxError} With QEMU-style messages.
 */
export function parseJson(text: string, options: Partial<ParseJsonOptions> = {}): JsonValue {
  const p = new Parser(text, options.maxDepth ?? DEFAULT_MAX_DEPTH, options.nullPrototype ?? true);
  p.skipSpace();
  const value = p.value(0);
  p.skipSpace();
  if (p.pos < text.length) p.stray();
  return value;
}

class Parser {
  pos = 0;
  readonly #text: string;
  readonly #maxDepth: number;
  readonly #nullPrototype: boolean;

  constructor(text: string, maxDepth: number, nullPrototype: boolean) {
    this.#text = text;
    this.#maxDepth = maxDepth;
    this.#nullPrototype = nullPrototype;
  }

  fail(detail: string): never {
    throw new JsonSyntaxError(`JSON parse error, ${detail}`);
  }

  /** Reports the token at `pos` as unexpected, showing at most 16 characters of it. */
  stray(): never {
    const rest = this.#text.slice(this.pos);
    const m = /^[^\s{}[\],:]*/.exec(rest);
    const token = m === null || m[0] === "" ? rest.slice(0, 1) : m[0];
    this.fail(`stray '${token.length > 16 ? `${token.slice(0, 16)}...` : token}'`);
  }

  skipSpace(): void {
    const t = this.#text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== C_SPACE && c !== C_TAB && c !== C_LF && c !== C_CR) break;
      this.pos++;
    }
  }

  value(depth: number): JsonValue {
    const t = this.#text;
    if (this.pos >= t.length) this.fail("expecting value");
    const c = t[this.pos];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
      case "'":
        return this.string();
      case "-":
        return this.number();
      default:
        if (c !== undefined && c >= "0" && c <= "9") return this.number();
        if (c !== undefined && c >= "a" && c <= "z") return this.keyword();
        if (c === "}" || c === "]" || c === "," || c === ":") this.fail("expecting value");
        return this.stray();
    }
  }

  object(depth: number): JsonObject {
    if (depth > this.#maxDepth) throw new JsonSyntaxError(NESTING_ERROR);
    const t = this.#text;
    const obj: JsonObject = this.#nullPrototype ? (Object.create(null) as JsonObject) : {};
    this.pos++; // {
    this.skipSpace();
    if (t[this.pos] === "}") {
      this.pos++;
      return obj;
    }
    for (;;) {
      const c = t[this.pos];
      if (c !== '"' && c !== "'") {
        if (this.pos >= t.length) this.fail("expecting value");
        this.fail("key is not a string in object");
      }
      const key = this.string();
      this.skipSpace();
      if (t[this.pos] !== ":") this.fail("missing : in object pair");
      this.pos++;
      this.skipSpace();
      const value = this.value(depth);
      if (Object.hasOwn(obj, key)) this.fail("duplicate key");
      // defineProperty, not assignment: "__proto__" must stay a plain key even on ordinary objects.
      Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
      this.skipSpace();
      const sep = t[this.pos];
      if (sep === "}") {
        this.pos++;
        return obj;
      }
      if (sep !== ",") this.fail("expected separator in dict");
      this.pos++;
      this.skipSpace();
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > this.#maxDepth) throw new JsonSyntaxError(NESTING_ERROR);
    const t = this.#text;
    const out: JsonValue[] = [];
    this.pos++; // [
    this.skipSpace();
    if (t[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.skipSpace();
      const sep = t[this.pos];
      if (sep === "]") {
        this.pos++;
        return out;
      }
      if (sep !== ",") this.fail("expected separator in list");
      this.pos++;
      this.skipSpace();
    }
  }

  string(): string {
    const t = this.#text;
    const quote = t.charCodeAt(this.pos);
    this.pos++;
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("missing closing quote in string");
      const c = t.charCodeAt(this.pos);
      if (c === quote) {
        out += t.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c !== C_BACKSLASH) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
        case "'":
        case "\\":
        case "/":
          out += e;
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const unit = this.hex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (t[this.pos] !== "\\" || t[this.pos + 1] !== "u") this.fail("invalid \\u escape (lone surrogate)");
            this.pos += 2;
            const low = this.hex4();
            if (low < 0xdc00 || low > 0xdfff) this.fail("invalid \\u escape (lone surrogate)");
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            this.fail("invalid \\u escape (lone surrogate)");
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          this.fail("invalid escape sequence in string");
      }
      start = this.pos;
    }
  }

  hex4(): number {
    const digits = this.#text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail("invalid hex escape sequence in string");
    this.pos += 4;
    return Number.parseInt(digits, 16);
  }

  number(): number | bigint {
    const rest = this.#text.slice(this.pos, this.pos + 400);
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(rest);
    if (m === null) this.stray();
    const token = m[0];
    const next = this.#text[this.pos + token.length];
    if (next !== undefined && /[0-9A-Za-z.+-]/.test(next)) this.stray();
    this.pos += token.length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(token);
      if (Number.isSafeInteger(n)) return n;
      return BigInt(token);
    }
    const n = Number(token);
    if (!Number.isFinite(n)) this.fail(`number '${token}' is out of range`);
    return n;
  }

  keyword(): boolean | null {
    const m = /^[a-z]+/.exec(this.#text.slice(this.pos, this.pos + 64));
    const word = m === null ? "" : m[0];
    this.pos += word.length;
    if (word === "true") return true;
    if (word === "false") return false;
    if (word === "null") return null;
    return this.fail(`invalid keyword '${word.length > 16 ? `${word.slice(0, 16)}...` : word}'`);
  }
}

/**
 * Serializes a value the way QEMU prints QMP output: `{"return": {}, "id": 1}` (a space after `:` and `,`).
 *
 * Like `JSON.stringify`: `undefined` members are left out (`null` inside arrays), `toJSON()` is honoured and
 * non-finite numbers become `null`. Unlike it, `bigint` is written as an integer.
 *
 * @param value Any JSON-like value.
 * @returns One line of JSON, without the line ending.
 * @throws {TypeError} On cycles or values that are not JSON-like (functions, symbols at the top).
 */
export function stringifyJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, new Set());
  return out.join("");
}

function write(value: unknown, out: string[], ancestors: Set<object>): void {
  if (value === null || value === undefined) {
    out.push("null");
    return;
  }
  switch (typeof value) {
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "number":
      out.push(Number.isFinite(value) ? String(value) : "null");
      return;
    case "bigint":
      out.push(value.toString());
      return;
    case "string":
      out.push(JSON.stringify(value));
      return;
    case "object":
      break;
    default:
      throw new TypeError(`Cannot serialize a ${typeof value} as QMP JSON`);
  }
  const withToJson = value as { toJSON?: unknown };
  if (typeof withToJson.toJSON === "function") {
    write((withToJson.toJSON as () => unknown).call(value), out, ancestors);
    return;
  }
  if (ancestors.has(value)) throw new TypeError("Cannot serialize a cyclic structure as QMP JSON");
  ancestors.add(value);
  if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i > 0) out.push(", ");
      write(typeof item === "function" || typeof item === "symbol" ? null : item, out, ancestors);
    });
    out.push("]");
  } else if (value instanceof Uint8Array) {
    throw new TypeError("Cannot serialize bytes as QMP JSON");
  } else {
    out.push("{");
    let first = true;
    for (const key of Object.keys(value)) {
      const member = (value as Record<string, unknown>)[key];
      if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
      out.push(first ? "" : ", ", JSON.stringify(key), ": ");
      first = false;
      write(member, out, ancestors);
    }
    out.push("}");
  }
  ancestors.delete(value);
}
