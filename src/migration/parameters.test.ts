import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { DEFAULT_PARAMETERS, type MigrationParametersUpdate, PARAMETER_NAMES, Parameters } from "./parameters.js";

/**
 * `query-migrate-parameters` of a fresh qemu-system-x86_64 7.2 (Debian 1:7.2+dfsg-7+deb12u18), captured with
 * `-M none -nodefaults -S`; keys in the order of `query-qmp-schema`'s `MigrationParameters` members.
 */
const QEMU_72_DEFAULTS = {
  "announce-initial": 50,
  "announce-max": 550,
  "announce-rounds": 5,
  "announce-step": 100,
  "compress-level": 1,
  "compress-threads": 8,
  "compress-wait-thread": true,
  "decompress-threads": 2,
  "throttle-trigger-threshold": 50,
  "cpu-throttle-initial": 20,
  "cpu-throttle-increment": 10,
  "cpu-throttle-tailslow": false,
  "tls-creds": "",
  "tls-hostname": "",
  "tls-authz": "",
  "max-bandwidth": 134217728,
  "downtime-limit": 300,
  "x-checkpoint-delay": 20000,
  "block-incremental": false,
  "multifd-channels": 2,
  "xbzrle-cache-size": 67108864,
  "max-postcopy-bandwidth": 0,
  "max-cpu-throttle": 99,
  "multifd-compression": "none",
  "multifd-zlib-level": 1,
  "multifd-zstd-level": 1,
};

function rejects(params: Parameters, update: Record<string, unknown>, message: string): void {
  const before = params.query();
  assert.throws(
    () => params.set(update as MigrationParametersUpdate),
    (e: unknown) => {
      assert.ok(isMigrationError(e, "BAD_COMMAND"), String(e));
      assert.equal(e.message, message);
      return true;
    },
  );
  assert.deepEqual(params.query(), before, "a rejected update changes nothing");
}

void suite("Parameters", () => {
  test("query() returns QEMU 7.2's defaults in QEMU's key order", () => {
    const q = new Parameters().query();
    assert.deepEqual(q, QEMU_72_DEFAULTS);
    assert.deepEqual(Object.keys(q), Object.keys(QEMU_72_DEFAULTS));
    assert.deepEqual(PARAMETER_NAMES.slice(0, -1), Object.keys(QEMU_72_DEFAULTS));
    assert.equal(PARAMETER_NAMES.at(-1), "block-bitmap-mapping");
    assert.deepEqual({ ...DEFAULT_PARAMETERS }, QEMU_72_DEFAULTS);
  });

  test("set() applies values and get() reads them", () => {
    const p = new Parameters();
    p.set({
      "downtime-limit": 2_000_000,
      "max-bandwidth": 0,
      "multifd-compression": "zstd",
      "cpu-throttle-tailslow": true,
    });
    assert.equal(p.get("downtime-limit"), 2_000_000);
    assert.equal(p.get("max-bandwidth"), 0);
    assert.equal(p.get("multifd-compression"), "zstd");
    assert.equal(p.get("cpu-throttle-tailslow"), true);
  });

  test("QEMU's range messages (verified against qemu-system-x86_64 7.2)", () => {
    const p = new Parameters();
    const cases: [Record<string, unknown>, string][] = [
      [
        { "downtime-limit": 2_000_001 },
        "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
      ],
      [
        { "throttle-trigger-threshold": 0 },
        "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100",
      ],
      [
        { "throttle-trigger-threshold": 101 },
        "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100",
      ],
      [{ "cpu-throttle-initial": 0 }, "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"],
      [
        { "cpu-throttle-increment": 100 },
        "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99",
      ],
      [
        { "max-cpu-throttle": 100 },
        "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99",
      ],
      [
        { "max-cpu-throttle": 10 },
        "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99",
      ],
      [{ "multifd-channels": 0 }, "Parameter 'multifd_channels' expects a value between 1 and 255"],
      [{ "multifd-channels": 256 }, "Parameter 'multifd-channels' expects uint8_t"],
      [{ "compress-level": 10 }, "Parameter 'compress_level' expects a value between 0 and 9"],
      [{ "compress-threads": 0 }, "Parameter 'compress_threads' expects a value between 1 and 255"],
      [{ "decompress-threads": 0 }, "Parameter 'decompress_threads' expects a value between 1 and 255"],
      [
        { "xbzrle-cache-size": 1000 },
        "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
      ],
      [
        { "xbzrle-cache-size": 1024 },
        "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
      ],
      [{ "announce-initial": 100_001 }, "Parameter 'announce_initial' expects a value between 0 and 100000"],
      [{ "announce-max": 100_001 }, "Parameter 'announce_max' expects a value between 0 and 100000"],
      [{ "announce-rounds": 1001 }, "Parameter 'announce_rounds' expects a value between 0 and 1000"],
      [{ "announce-step": 0 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
      [{ "announce-step": 10_001 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
      [{ "multifd-zlib-level": 10 }, "Parameter 'multifd_zlib_level' expects a value between 0 and 9"],
      [{ "multifd-zstd-level": 21 }, "Parameter 'multifd_zstd_level' expects a value between 0 and 20"],
      [{ "x-checkpoint-delay": 2 ** 32 }, "Parameter 'x-checkpoint-delay' expects uint32_t"],
    ];
    for (const [update, message] of cases) rejects(p, update, message);
  });

  test("QEMU's type messages", () => {
    const p = new Parameters();
    rejects(p, { "downtime-limit": "x" }, "Parameter 'downtime-limit' expects uint64");
    rejects(p, { "downtime-limit": 1.5 }, "Parameter 'downtime-limit' expects uint64");
    rejects(p, { "downtime-limit": -1 }, "Parameter 'downtime-limit' expects uint64");
    rejects(p, { "cpu-throttle-tailslow": 1 }, "Invalid parameter type for 'cpu-throttle-tailslow', expected: boolean");
    rejects(p, { "tls-creds": 5 }, "Invalid parameter type for 'tls-creds', expected: StrOrNull");
    rejects(p, { "multifd-compression": "lz4" }, "Parameter 'multifd-compression' does not accept value 'lz4'");
    rejects(p, { "multifd-compression": 5 }, "Invalid parameter type for 'multifd-compression', expected: string");
    rejects(p, { bogus: 1 }, "Parameter 'bogus' is unexpected");
    // Like QEMU's visitor, member type errors come before unexpected keys.
    rejects(p, { bogus: 1, "downtime-limit": true }, "Parameter 'downtime-limit' expects uint64");
  });

  test("set() is atomic: one bad value rejects the whole update", () => {
    const p = new Parameters();
    rejects(
      p,
      { "downtime-limit": 12, "announce-step": 0 },
      "Parameter 'announce_step' expects a value between 0 and 10000",
    );
    assert.equal(p.get("downtime-limit"), 300);
  });

  test("max-cpu-throttle is checked against the merged cpu-throttle-initial", () => {
    const p = new Parameters();
    p.set({ "max-cpu-throttle": 30, "cpu-throttle-initial": 20 });
    assert.equal(p.get("max-cpu-throttle"), 30);
    // QEMU checks max-cpu-throttle only when it is set, so raising the initial value alone passes.
    p.set({ "cpu-throttle-initial": 50 });
    rejects(
      p,
      { "max-cpu-throttle": 40 },
      "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99",
    );
  });

  test("TLS parameters accept null and '' to clear", () => {
    const p = new Parameters();
    p.set({ "tls-creds": "tls0", "tls-hostname": "dst", "tls-authz": "authz0" });
    assert.equal(p.get("tls-creds"), "tls0");
    p.set({ "tls-creds": null, "tls-hostname": "" });
    assert.equal(p.get("tls-creds"), "");
    assert.equal(p.get("tls-hostname"), "");
    assert.equal(p.get("tls-authz"), "authz0");
  });

  test("xbzrle-cache-size must be a power of two at least the target page size", () => {
    const p = new Parameters();
    p.set({ "xbzrle-cache-size": 65536 });
    assert.equal(p.get("xbzrle-cache-size"), 65536);
    p.set({ "xbzrle-cache-size": 2 ** 40 });
    const big = new Parameters({ targetPageSize: 65536 });
    rejects(
      big,
      { "xbzrle-cache-size": 4096 },
      "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
    );
    assert.throws(() => new Parameters({ targetPageSize: 1000 }), RangeError);
  });

  test("uint64 values above 2^53 - 1 are stored as 2^53 - 1; 2^64 and more are rejected", () => {
    const p = new Parameters();
    p.set({ "max-bandwidth": 18446744073709551615n as unknown as number });
    assert.equal(p.get("max-bandwidth"), Number.MAX_SAFE_INTEGER);
    rejects(p, { "max-bandwidth": 18446744073709551616n }, "Parameter 'max-bandwidth' expects uint64");
    rejects(
      p,
      { "downtime-limit": 2n ** 60n },
      "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
    );
  });

  test("block-bitmap-mapping is accepted, stored, returned by query() and checked like QEMU", () => {
    const p = new Parameters();
    assert.equal(Object.hasOwn(p.query(), "block-bitmap-mapping"), false);
    const mapping = [
      { "node-name": "drive0", alias: "a0", bitmaps: [{ name: "b0", alias: "x0", transform: { persistent: true } }] },
      { "node-name": "drive1", alias: "a1", bitmaps: [] },
    ];
    p.set({ "block-bitmap-mapping": mapping });
    assert.deepEqual(p.query()["block-bitmap-mapping"], mapping);
    p.set({ "block-bitmap-mapping": [] });
    assert.deepEqual(p.query()["block-bitmap-mapping"], []);
    const prefix = "Invalid mapping given for block-bitmap-mapping: ";
    rejects(
      p,
      {
        "block-bitmap-mapping": [
          { "node-name": "n", alias: "a", bitmaps: [] },
          { "node-name": "n", alias: "b", bitmaps: [] },
        ],
      },
      `${prefix}The node name 'n' is mapped twice`,
    );
    rejects(
      p,
      {
        "block-bitmap-mapping": [
          { "node-name": "n", alias: "a", bitmaps: [] },
          { "node-name": "m", alias: "a", bitmaps: [] },
        ],
      },
      `${prefix}The node alias 'a' is used twice`,
    );
    rejects(
      p,
      { "block-bitmap-mapping": [{ "node-name": "n", alias: "1a", bitmaps: [] }] },
      `${prefix}The node alias '1a' is not well-formed`,
    );
    rejects(
      p,
      { "block-bitmap-mapping": [{ "node-name": "n", alias: "a", bitmaps: [{ name: 5, alias: "x" }] }] },
      "Invalid parameter type for 'block-bitmap-mapping[0].bitmaps[0].name', expected: string",
    );
    rejects(
      p,
      { "block-bitmap-mapping": [{ "node-name": "n", alias: "a" }] },
      "Parameter 'block-bitmap-mapping[0].bitmaps' is missing",
    );
  });

  test("query() returns copies", () => {
    const p = new Parameters();
    p.set({ "block-bitmap-mapping": [{ "node-name": "n", alias: "a", bitmaps: [] }] });
    const q = p.query();
    (q as { "downtime-limit": number })["downtime-limit"] = 1;
    const first = (q["block-bitmap-mapping"] as unknown as { alias: string }[])[0];
    assert.ok(first !== undefined);
    first.alias = "changed";
    assert.equal(p.get("downtime-limit"), 300);
    assert.equal(p.query()["block-bitmap-mapping"]?.[0]?.alias, "a");
  });

  test("zero-copy-send forbids multifd compression and TLS (context from the capabilities)", () => {
    const p = new Parameters();
    const msg = "Zero copy only available for non-compressed non-TLS multifd migration";
    assert.throws(() => p.set({ "multifd-compression": "zlib" }, { zeroCopySend: true }), { message: msg });
    assert.throws(() => p.set({ "tls-creds": "tls0" }, { zeroCopySend: true }), { message: msg });
    p.set({ "tls-creds": "", "multifd-compression": "none" }, { zeroCopySend: true });
  });
});
