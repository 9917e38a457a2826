import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { formatQmpAddress, isLoopbackHost, parseQmpAddress } from "./address.js";

void suite("QMP addresses", () => {
  test("parseQmpAddress() reads unix:PATH and tcp:HOST:PORT", () => {
    assert.deepEqual(parseQmpAddress("unix:/tmp/q.sock"), { kind: "unix", path: "/tmp/q.sock" });
    assert.deepEqual(parseQmpAddress("tcp:127.0.0.1:4444"), { kind: "tcp", host: "127.0.0.1", port: 4444 });
    assert.deepEqual(parseQmpAddress("tcp:[::1]:0"), { kind: "tcp", host: "::1", port: 0 });
    assert.equal(formatQmpAddress({ kind: "tcp", host: "::1", port: 5 }), "tcp:[::1]:5");
    assert.equal(formatQmpAddress({ kind: "unix", path: "/x" }), "unix:/x");
  });

  for (const bad of ["", "unix:", "tcp:127.0.0.1", "tcp:127.0.0.1:99999", "tcp:[::1]4", "stdio", "unix:/a\0b"]) {
    test(`parseQmpAddress() rejects ${JSON.stringify(bad)} with BAD_URI`, () => {
      assert.throws(
        () => parseQmpAddress(bad),
        (e: unknown) => isMigrationError(e, "BAD_URI"),
      );
    });
  }

  test("isLoopbackHost() accepts only loopback", () => {
    for (const h of ["localhost", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"])
      assert.equal(isLoopbackHost(h), true, h);
    for (const h of ["0.0.0.0", "", "::", "10.0.0.1", "example.com", "::ffff:10.0.0.1", "128.0.0.1"]) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});
