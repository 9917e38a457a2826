import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { parseJson } from "./json.js";
import { isQmpError } from "./qmp-error.js";
import * as q from "./schema.js";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

const caps = q.object({
  capabilities: q.array(q.object({ capability: q.enumOf(["events", "xbzrle"]), state: q.bool() })),
});
const migrate = q.object({ uri: q.str(), blk: q.optional(q.bool()), detach: q.optional(q.bool()) });
const params = q.object({
  "downtime-limit": q.optional(q.uint("uint64")),
  "multifd-channels": q.optional(q.uint("uint8")),
  "tls-creds": q.optional(q.strOrNull()),
  speed: q.optional(q.number()),
  delta: q.optional(q.int({ min: -10, max: 10 })),
  enable: q.optional(q.array(q.enumOf(["oob"]))),
});

function fails(schema: q.ObjectSchema, json: string, desc: string): void {
  assert.throws(
    () => q.checkArguments(schema, parseJson(json)),
    (e: unknown) => {
      assert.ok(isQmpError(e, "GenericError"), String(e));
      assert.equal(e.desc, desc);
      return true;
    },
  );
}

void suite("schema", () => {
  test("infers handler argument types, optional members as ?: keys", () => {
    assertType<Equal<q.Infer<typeof migrate>, { uri: string; blk?: boolean; detach?: boolean }>>();
    assertType<Equal<q.Infer<typeof caps>, { capabilities: { capability: "events" | "xbzrle"; state: boolean }[] }>>();
    assertType<Equal<keyof q.Infer<typeof q.NO_ARGS>, never>>();
  });

  test("checkArguments() returns a plain object with only declared members", () => {
    const out = q.checkArguments(migrate, parseJson('{"uri": "tcp:1:2", "detach": true}'));
    assert.deepEqual(out, { uri: "tcp:1:2", detach: true });
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(q.checkArguments(q.NO_ARGS, undefined), {});
  });

  // Messages verified against qemu-system-x86_64 7.2 (see the module comment).
  const cases: [string, q.ObjectSchema, string, string][] = [
    ["missing member", migrate, "{}", "Parameter 'uri' is missing"],
    ["wrong type: string", migrate, '{"uri": 5}', "Invalid parameter type for 'uri', expected: string"],
    [
      "wrong type: boolean",
      migrate,
      '{"uri": "x", "blk": "yes"}',
      "Invalid parameter type for 'blk', expected: boolean",
    ],
    ["unexpected member", migrate, '{"uri": "x", "bogus": 1}', "Parameter 'bogus' is unexpected"],
    ["unexpected __proto__", migrate, '{"uri": "x", "__proto__": 1}', "Parameter '__proto__' is unexpected"],
    [
      "type errors before unexpected members",
      migrate,
      '{"bogus": 1, "uri": 5}',
      "Invalid parameter type for 'uri', expected: string",
    ],
    [
      "nested missing",
      caps,
      '{"capabilities": [{"capability": "events"}]}',
      "Parameter 'capabilities[0].state' is missing",
    ],
    [
      "nested wrong type",
      caps,
      '{"capabilities": [{"capability": "events", "state": "yes"}]}',
      "Invalid parameter type for 'capabilities[0].state', expected: boolean",
    ],
    [
      "nested unexpected",
      caps,
      '{"capabilities": [{"capability": "events", "state": true, "x": 1}]}',
      "Parameter 'capabilities[0].x' is unexpected",
    ],
    ["array expected", caps, '{"capabilities": {}}', "Invalid parameter type for 'capabilities', expected: array"],
    [
      "object expected",
      caps,
      '{"capabilities": [1]}',
      "Invalid parameter type for 'capabilities[0]', expected: object",
    ],
    [
      "enum value not a string",
      caps,
      '{"capabilities": [{"capability": 5, "state": true}]}',
      "Invalid parameter type for 'capabilities[0].capability', expected: string",
    ],
    [
      "unknown enum value (bare member name)",
      caps,
      '{"capabilities": [{"capability": "nope", "state": true}]}',
      "Parameter 'capability' does not accept value 'nope'",
    ],
    [
      "unknown enum value in a list ('null')",
      params,
      '{"enable": ["foo"]}',
      "Parameter 'null' does not accept value 'foo'",
    ],
    ["uint64 given a string", params, '{"downtime-limit": "x"}', "Parameter 'downtime-limit' expects uint64"],
    ["uint64 given a float", params, '{"downtime-limit": 1.5}', "Parameter 'downtime-limit' expects uint64"],
    [
      "uint64 given 2^64",
      params,
      '{"downtime-limit": 18446744073709551616}',
      "Parameter 'downtime-limit' expects uint64",
    ],
    ["uint8 over its width", params, '{"multifd-channels": 300}', "Parameter 'multifd-channels' expects uint8_t"],
    ["StrOrNull", params, '{"tls-creds": 5}', "Invalid parameter type for 'tls-creds', expected: StrOrNull"],
    ["number", params, '{"speed": "fast"}', "Invalid parameter type for 'speed', expected: number"],
    ["integer", params, '{"delta": 0.5}', "Invalid parameter type for 'delta', expected: integer"],
    ["integer range", params, '{"delta": 11}', "Parameter 'delta' expects a value between -10 and 10"],
  ];
  for (const [name, schema, json, desc] of cases) {
    test(`checkArguments() reports ${name}`, () => fails(schema, json, desc));
  }

  test("uint64 values above 2^53 - 1 are clamped to 2^53 - 1, bigints converted", () => {
    assert.deepEqual(q.checkArguments(params, parseJson('{"downtime-limit": 18446744073709551615}')), {
      "downtime-limit": Number.MAX_SAFE_INTEGER,
    });
    assert.deepEqual(q.checkArguments(params, parseJson('{"speed": 18446744073709551616, "tls-creds": null}')), {
      speed: 2 ** 64,
      "tls-creds": null,
    });
  });

  test("schemas are frozen", () => {
    assert.ok(Object.isFrozen(migrate));
    assert.ok(Object.isFrozen(migrate.fields));
  });
});
