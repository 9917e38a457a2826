import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { formatUri, type MigrationUri, parseUri, type UriSide } from "./uri.js";

/** [uri, side, message fragment] */
const malformed: readonly [string, UriSide, string][] = [
  ["", "connect", "empty"],
  ["tcp:foo", "connect", "missing port"],
  ["tcp:", "listen", "missing host and port"],
  ["tcp:127.0.0.1:", "connect", "missing port"],
  [":4444", "connect", "valid migration protocol"],
  ["4444", "connect", "valid migration protocol"],
  ["http://127.0.0.1:80", "connect", "valid migration protocol"],
  ["TCP:127.0.0.1:4444", "connect", "valid migration protocol"],
  ["tcp::4444", "connect", "missing host"],
  ["tcp:0:4444", "connect", "only listen"],
  ["tcp:127.0.0.1:0", "connect", "port 0"],
  ["tcp:127.0.0.1:65536", "listen", "outside 0..65535"],
  ["tcp:127.0.0.1:99999999999", "listen", "outside 0..65535"],
  ["tcp:127.0.0.1:-1", "listen", "not a decimal integer"],
  ["tcp:127.0.0.1:44a", "connect", "not a decimal integer"],
  ["tcp:127.0.0.1:0x10", "connect", "not a decimal integer"],
  ["tcp:127.0.0.1: 80", "connect", "not a decimal integer"],
  ["tcp:localhost:http", "connect", "not a decimal integer"],
  ["tcp:[::1:4444", "connect", "unbalanced"],
  ["tcp:::1]:4444", "connect", "unbalanced"],
  ["tcp:[[::1]]:4444", "connect", "unbalanced"],
  ["tcp:[]:4444", "listen", "empty IPv6"],
  ["tcp:[::1]4444", "connect", 'expected ":PORT"'],
  ["tcp:[::1]", "connect", "missing port"],
  ["tcp:[127.0.0.1]:4444", "connect", "not a valid IPv6"],
  ["tcp:::1:4444", "connect", "brackets"],
  ["tcp:fe80::1:4444", "listen", "brackets"],
  ["tcp:1.2.3:4444", "connect", "not a valid IPv4"],
  ["tcp:256.1.1.1:4444", "connect", "not a valid IPv4"],
  ["tcp:bad host:4444", "connect", "not a valid host name"],
  ["tcp:-bad.example:4444", "connect", "not a valid host name"],
  ["tcp:127.0.0.1:4444,ipv4", "connect", "options"],
  ["unix:", "listen", "missing socket path"],
  [`unix:/tmp/${"x".repeat(120)}`, "listen", "limit is 107"],
  ["exec:", "connect", "missing command"],
  ["exec:   ", "listen", "missing command"],
  ["fd:", "connect", "missing file descriptor name"],
  ["fd:3", "connect", "only the listen side"],
  ["fd:3x", "listen", "not a valid descriptor number"],
  ["fd:99999999999", "listen", "not a valid descriptor number"],
  ["file:", "connect", "missing path"],
  ["file:,offset=5", "connect", "missing path"],
  ["file:/tmp/x,offset=", "connect", "bad offset"],
  ["file:/tmp/x,offset=-1", "connect", "bad offset"],
  ["file:/tmp/x,offset=1.5", "connect", "bad offset"],
  ["file:/tmp/x,offset=0x", "connect", "bad offset"],
  ["file:/tmp/x,offset=12k", "connect", "bad offset"],
  ["file:/tmp/x,offset=9007199254740992", "connect", "bad offset"],
  ["file:/tmp/x,offset=0x20000000000000", "listen", "bad offset"],
  ["file:/tmp/x,offset=1,offset=2", "connect", "twice"],
  ["file:/tmp/x,mode=0600", "connect", 'unknown option "mode=0600"'],
  ["file:/tmp/x,", "connect", 'unknown option ""'],
  ["file:/dev/fdset/abc", "connect", "fd set"],
  ["tcp:127.0.0.1:4444\0", "connect", "NUL"],
  ["unix:/tmp/a\0b", "listen", "NUL"],
  ["defer", "listen", "migration layer"],
  ["defer", "connect", "migration layer"],
  ["vsock:3:4444", "connect", "not supported"],
  ["rdma:127.0.0.1:4444", "listen", "not supported"],
];

const valid: readonly [string, UriSide, MigrationUri][] = [
  ["tcp:127.0.0.1:4444", "connect", { kind: "tcp", host: "127.0.0.1", port: 4444 }],
  ["tcp:localhost:1", "connect", { kind: "tcp", host: "localhost", port: 1 }],
  ["tcp:migration-dest.example.com:65535", "connect", { kind: "tcp", host: "migration-dest.example.com", port: 65535 }],
  ["tcp:[::1]:4444", "connect", { kind: "tcp", host: "::1", port: 4444 }],
  ["tcp:[fe80::1%lo]:4444", "connect", { kind: "tcp", host: "fe80::1%lo", port: 4444 }],
  ["tcp:0.0.0.0:4444", "connect", { kind: "tcp", host: "0.0.0.0", port: 4444 }],
  ["tcp:127.0.0.1:04444", "connect", { kind: "tcp", host: "127.0.0.1", port: 4444 }],
  ["tcp:127.0.0.1:0", "listen", { kind: "tcp", host: "127.0.0.1", port: 0 }],
  ["tcp:0:4444", "listen", { kind: "tcp", host: "", port: 4444 }],
  ["tcp::4444", "listen", { kind: "tcp", host: "", port: 4444 }],
  ["tcp:0.0.0.0:0", "listen", { kind: "tcp", host: "", port: 0 }],
  ["tcp:[::]:4444", "listen", { kind: "tcp", host: "::", port: 4444 }],
  ["unix:/run/ferry/mig.sock", "connect", { kind: "unix", path: "/run/ferry/mig.sock" }],
  ["unix:relative.sock", "listen", { kind: "unix", path: "relative.sock" }],
  ["exec:cat > /tmp/out", "connect", { kind: "exec", command: "cat > /tmp/out" }],
  ["exec:gzip -c | ssh host 'cat > x:y'", "connect", { kind: "exec", command: "gzip -c | ssh host 'cat > x:y'" }],
  ["fd:migfd", "connect", { kind: "fd", name: "migfd" }],
  ["fd:migfd", "listen", { kind: "fd", name: "migfd" }],
  ["fd:3", "listen", { kind: "fd", name: "3" }],
  ["file:/tmp/vm.img", "connect", { kind: "file", path: "/tmp/vm.img", offset: 0 }],
  ["file:/tmp/vm.img,offset=4096", "listen", { kind: "file", path: "/tmp/vm.img", offset: 4096 }],
  ["file:/tmp/vm.img,offset=0x1000", "connect", { kind: "file", path: "/tmp/vm.img", offset: 4096 }],
  ["file:/tmp/vm.img,offset=0X1f", "connect", { kind: "file", path: "/tmp/vm.img", offset: 31 }],
  ["file:/tmp/vm.img,offset=9007199254740991", "connect", { kind: "file", path: "/tmp/vm.img", offset: 2 ** 53 - 1 }],
  ["file:/tmp/a,,b.img,offset=1", "connect", { kind: "file", path: "/tmp/a,b.img", offset: 1 }],
  ["file:/tmp/a:b", "connect", { kind: "file", path: "/tmp/a:b", offset: 0 }],
  ["file:/dev/fdset/3,offset=8", "listen", { kind: "file", path: "/dev/fdset/3", offset: 8 }],
];

void suite("parseUri()", () => {
  for (const [uri, side, fragment] of malformed) {
    test(`parseUri() rejects ${JSON.stringify(uri)} (${side}) with BAD_URI`, () => {
      assert.throws(
        () => parseUri(uri, side),
        (e: unknown) => {
          assert.ok(isMigrationError(e, "BAD_URI"), `expected BAD_URI, got ${String(e)}`);
          assert.ok(e.message.startsWith(`Cannot parse migration URI ${JSON.stringify(uri)}: `), e.message);
          assert.ok(e.message.includes(fragment), `message ${JSON.stringify(e.message)} lacks "${fragment}"`);
          return true;
        },
      );
    });
  }

  for (const [uri, side, expected] of valid) {
    test(`parseUri() parses ${JSON.stringify(uri)} (${side})`, () => {
      assert.deepEqual(parseUri(uri, side), expected);
    });
  }

  test("parseUri() gives the exact message of the brief for a missing port", () => {
    assert.throws(() => parseUri("tcp:foo", "connect"), {
      name: "MigrationError",
      code: "BAD_URI",
      message: 'Cannot parse migration URI "tcp:foo": missing port',
    });
  });

  test("parseUri() throws TypeError for a non-string", () => {
    // @ts-expect-error: wrong argument type on purpose
    assert.throws(() => parseUri(42, "connect"), TypeError);
  });
});

void suite("formatUri()", () => {
  for (const [uri, side, expected] of valid) {
    test(`formatUri() round-trips ${JSON.stringify(uri)}`, () => {
      assert.deepEqual(parseUri(formatUri(expected), side), expected);
    });
  }

  test("formatUri() writes brackets for IPv6 and doubles commas in file paths", () => {
    assert.equal(formatUri({ kind: "tcp", host: "::1", port: 1 }), "tcp:[::1]:1");
    assert.equal(formatUri({ kind: "file", path: "/a,b", offset: 2 }), "file:/a,,b,offset=2");
    assert.equal(formatUri({ kind: "file", path: "/a", offset: 0 }), "file:/a");
  });
});
