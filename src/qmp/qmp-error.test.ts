import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ErrorCodes, MigrationError } from "../errors.js";
import { isQmpError, MIGRATION_ERROR_CLASSES, QmpError, toQmpErrorBody } from "./qmp-error.js";

void suite("QMP errors", () => {
  test("every MigrationError code has a QMP class", () => {
    for (const code of Object.values(ErrorCodes)) assert.equal(MIGRATION_ERROR_CLASSES[code], "GenericError", code);
  });

  test("toQmpErrorBody() maps QmpError, MigrationError and foreign errors", () => {
    assert.deepEqual(toQmpErrorBody(new QmpError("DeviceNotFound", "Device 'x' not found")), {
      class: "DeviceNotFound",
      desc: "Device 'x' not found",
    });
    assert.deepEqual(toQmpErrorBody(new MigrationError("INVALID_STATE", "There's a migration process in progress")), {
      class: "GenericError",
      desc: "There's a migration process in progress",
    });
    assert.deepEqual(
      toQmpErrorBody(new MigrationError("UNKNOWN_SECTION", "Unknown section", { path: ["e1000"], offset: 9 })),
      {
        class: "GenericError",
        desc: "Unknown section (at e1000) (offset 9)",
      },
    );
    assert.deepEqual(toQmpErrorBody(new TypeError("oops")), { class: "GenericError", desc: "oops" });
    assert.deepEqual(toQmpErrorBody("text"), { class: "GenericError", desc: "text" });
  });

  test("isQmpError() checks the name and optionally the class", () => {
    const e = new QmpError("CommandNotFound", "The command x has not been found");
    assert.equal(e.message, e.desc);
    assert.equal(e.name, "QmpError");
    assert.ok(isQmpError(e));
    assert.ok(isQmpError(e, "CommandNotFound"));
    assert.equal(isQmpError(e, "GenericError"), false);
    assert.ok(!isQmpError(new Error("x")));
  });
});
