import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { FERRY_PACKAGE, FERRY_VERSION, QEMU_INTERFACE_VERSION } from "./version.js";

void suite("QMP version", () => {
  test("FERRY_VERSION matches package.json", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(FERRY_VERSION, pkg.version);
    assert.equal(FERRY_PACKAGE, `ferry ${pkg.version}`);
  });

  test("the QEMU interface version is 7.2.0", () => {
    assert.deepEqual({ ...QEMU_INTERFACE_VERSION }, { major: 7, minor: 2, micro: 0 });
  });
});
