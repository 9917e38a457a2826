/**
 * The whole vmstate suite again, on the closure path (`setVmstateJit(false)`): the other test files run here with
 * the generated codec off, so every behaviour they check holds for both paths. Also: the automatic fallback when
 * `new Function` is forbidden, and property names that are not identifiers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { resetJitProbe } from "./_jit.js";
import { bothPaths, hex, load, outcome, save } from "./_util.test.js";
import * as vm from "./index.js";

vm.setVmstateJit(false);

await import("./device.test.js");
await import("./golden.test.js");
await import("./hostile.test.js");
await import("./load.test.js");
await import("./property.test.js");

void suite("jit switch", () => {
  test("keys that are not identifiers are literal strings in the generated code", () => {
    const keys = ["x-y", 'a"b', "c\\", "\u2028", "}); throw 1; ({", "constructor", "0", "$ok", "__proto__x"];
    const fields: Record<string, vm.Field> = {};
    const state: Record<string, unknown> = {};
    keys.forEach((k, i) => {
      fields[k] = i % 2 === 0 ? vm.u16() : vm.array(vm.u8(), 2);
      state[k] = i % 2 === 0 ? 0x1234 + i : [i, 255 - i];
    });
    const dev = vm.device("odd", { version: 1, fields: fields as vm.Shape }) as vm.Device;
    const [a, b] = bothPaths(() => hex(save(dev, state)));
    assert.equal(a, b);
    const [la, lb] = bothPaths(() => {
      const t = vm.initialState(dev);
      load(dev, t, save(dev, state), 1);
      return t;
    });
    assert.deepEqual(la, state);
    assert.deepEqual(lb, state);
  });

  test("when new Function throws (a Content Security Policy), the closure path is used", () => {
    const dev = vm.device("csp", { version: 1, fields: { a: vm.u32(), b: vm.array(vm.u16(), 2) } });
    const real = globalThis.Function;
    resetJitProbe();
    globalThis.Function = function blocked(): never {
      throw new EvalError("Refused to evaluate a string as JavaScript (unsafe-eval)");
    } as unknown as FunctionConstructor;
    try {
      vm.setVmstateJit(true);
      const bytes = save(dev, { a: 7, b: [1, 2] });
      assert.equal(hex(bytes), "0000000700010002");
      const t = vm.initialState(dev);
      load(dev, t, bytes, 1);
      assert.deepEqual(t, { a: 7, b: [1, 2] });
      assert.equal(vm.vmstateJit(), false);
      assert.deepEqual(
        outcome(() => save(dev, { a: -1, b: [1, 2] })),
        {
          code: "FIELD_OUT_OF_RANGE",
          message: "Cannot save u32: -1 is out of range",
          path: ["csp", "a"],
          offset: 0,
        },
      );
      // A probe that passed but a generation that is refused (the policy changed) falls back as well.
      globalThis.Function = real;
      resetJitProbe();
      assert.equal(vm.vmstateJit(), true);
      globalThis.Function = function blocked(): never {
        throw new EvalError("Refused to evaluate a string as JavaScript (unsafe-eval)");
      } as unknown as FunctionConstructor;
      const dev2 = vm.device("csp2", { version: 1, fields: { a: vm.u8() } });
      assert.equal(hex(save(dev2, { a: 9 })), "09");
      assert.equal(vm.vmstateJit(), false);
    } finally {
      globalThis.Function = real;
      resetJitProbe();
      vm.setVmstateJit(false);
    }
  });
});
