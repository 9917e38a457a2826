/**
 * The package's export map: every public subpath resolves by name (package self-reference, through dist/) and
 * exposes its main entry points. `npm test` builds dist/ before running tests.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";

void suite("package exports", () => {
  const subpaths: [string, string[]][] = [
    ["ferry", ["MigrationError", "isMigrationError", "wire", "vm", "savevm", "ram", "migration", "transport", "qmp"]],
    ["ferry/errors", ["MigrationError", "isMigrationError"]],
    ["ferry/wire", ["ByteReader", "ByteWriter", "RateLimiter"]],
    ["ferry/transport", ["connect", "listen", "createChannelPair", "parseUri"]],
    ["ferry/vmstate", ["device", "u32", "saveDevice", "decodeDevice", "applyDevice", "initialState"]],
    ["ferry/savevm", ["Registry", "saveVm", "loadVm", "registerDevice", "GlobalState", "StreamLoader"]],
    ["ferry/ram", ["RamBlock", "RamDevice"]],
    ["ferry/migration", ["MigrationSource", "MigrationDestination", "Capabilities", "Parameters"]],
    ["ferry/qmp", ["QmpServer", "QmpClient"]],
  ];
  for (const [spec, names] of subpaths) {
    test(`"${spec}" resolves and exports ${names.join(", ")}`, async () => {
      const mod = (await import(spec)) as Record<string, unknown>;
      for (const n of names) assert.notEqual(mod[n], undefined, `${spec} lacks ${n}`);
    });
  }
});
