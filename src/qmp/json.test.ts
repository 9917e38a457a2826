import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { JsonSyntaxError, NESTING_ERROR, parseJson, stringifyJson } from "./json.js";

function parseError(text: string, message: string): void {
  assert.throws(
    () => parseJson(text),
    (e: unknown) => {
      assert.ok(e instanceof JsonSyntaxError, String(e));
      assert.equal(e.message, message);
      return true;
    },
  );
}

void suite("parseJson()", () => {
  test("parses RFC 8259 values", () => {
    assert.deepEqual(
      { ...(parseJson('{"a": [1, -2.5e3, "x\\n\\u00e9\\ud83d\\ude00", true, false, null, {}]}') as object) },
      { a: [1, -2500, "x\né😀", true, false, null, Object.create(null)] },
    );
  });

  test("accepts QEMU's single-quoted strings and the \\' escape", () => {
    assert.equal(parseJson("'it\\'s \"quoted\"'"), 'it\'s "quoted"');
  });

  test("creates objects without a prototype by default", () => {
    const o = parseJson('{"__proto__": {"polluted": 1}, "constructor": 2}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(o), null);
    assert.deepEqual(Object.keys(o), ["__proto__", "constructor"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("with nullPrototype: false, __proto__ is an own data property, not the prototype", () => {
    const o = parseJson('{"__proto__": {"polluted": 1}}', { nullPrototype: false }) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(o), Object.prototype);
    assert.ok(Object.hasOwn(o, "__proto__"));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("keeps integers exact: unsafe ones become bigint", () => {
    assert.equal(parseJson("9007199254740991"), 9007199254740991);
    assert.equal(parseJson("18446744073709551615"), 18446744073709551615n);
    assert.equal(parseJson("-9223372036854775808"), -9223372036854775808n);
    assert.equal(parseJson("1.0"), 1);
  });

  const errors: [string, string][] = [
    ['{"a": @}', "JSON parse error, stray '@'"],
    ['{"a" 1}', "JSON parse error, missing : in object pair"],
    ['{"a": 1 "b": 2}', "JSON parse error, expected separator in dict"],
    ["[1 2]", "JSON parse error, expected separator in list"],
    ["{1: 2}", "JSON parse error, key is not a string in object"],
    ['{"a": 1, "a": 2}', "JSON parse error, duplicate key"],
    ["}", "JSON parse error, expecting value"],
    ["nope", "JSON parse error, invalid keyword 'nope'"],
    ['"a\tb"', "JSON parse error, control character in string"],
    ['"\\x"', "JSON parse error, invalid escape sequence in string"],
    ['"\\u12"', "JSON parse error, invalid hex escape sequence in string"],
    ['"\\ud800"', "JSON parse error, invalid \\u escape (lone surrogate)"],
    ["1e400", "JSON parse error, number '1e400' is out of range"],
    ["01", "JSON parse error, stray '01'"],
    ['{"a": 1', "JSON parse error, expected separator in dict"],
    ["[1] 2", "JSON parse error, stray '2'"],
  ];
  for (const [text, message] of errors) {
    test(`rejects ${JSON.stringify(text)}`, () => parseError(text, message));
  }

  test("caps nesting depth", () => {
    assert.doesNotThrow(() => parseJson(`${"[".repeat(64)}${"]".repeat(64)}`));
    parseError(`${"[".repeat(65)}${"]".repeat(65)}`, NESTING_ERROR);
    parseError(`${'{"a":'.repeat(65)}1${"}".repeat(65)}`, NESTING_ERROR);
    assert.doesNotThrow(() => parseJson("[[[1]]]", { maxDepth: 3 }));
    assert.throws(() => parseJson("[[[[1]]]]", { maxDepth: 3 }), { message: NESTING_ERROR });
  });
});

void suite("stringifyJson()", () => {
  test("writes QEMU's spacing", () => {
    assert.equal(stringifyJson({ return: {}, id: 1 }), '{"return": {}, "id": 1}');
    assert.equal(stringifyJson([1, "a", null, true]), '[1, "a", null, true]');
  });

  test("writes bigint as integers and skips undefined members like JSON.stringify", () => {
    assert.equal(
      stringifyJson({ a: 18446744073709551615n, b: undefined, c: [undefined] }),
      '{"a": 18446744073709551615, "c": [null]}',
    );
    assert.equal(stringifyJson(Number.NaN), "null");
  });

  test("round-trips through parseJson", () => {
    const value = { s: 'é\u0001"', n: -1.5, list: [{ x: 1 }], big: 2n ** 64n };
    const back = parseJson(stringifyJson(value), { nullPrototype: false });
    assert.deepEqual(back, { ...value, list: [{ x: 1 }] });
  });

  test("refuses cycles", () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    assert.throws(() => stringifyJson(o), TypeError);
  });
});
