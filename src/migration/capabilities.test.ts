import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import {
  CAPABILITY_NAMES,
  Capabilities,
  type CapabilityName,
  checkCapabilityRules,
  FERRY_SUPPORTED_CAPABILITIES,
} from "./capabilities.js";

/** QEMU 7.2's `query-migrate-capabilities` order, as captured from qemu-system-x86_64 7.2. */
const QEMU_72_ORDER = [
  "xbzrle",
  "rdma-pin-all",
  "auto-converge",
  "zero-blocks",
  "compress",
  "events",
  "postcopy-ram",
  "x-colo",
  "release-ram",
  "block",
  "return-path",
  "pause-before-switchover",
  "multifd",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "x-ignore-shared",
  "validate-uuid",
  "background-snapshot",
  "zero-copy-send",
  "postcopy-preempt",
];

function rejects(fn: () => void, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMigrationError(e, "BAD_COMMAND"), String(e));
    assert.equal(e.message, message);
    return true;
  });
}

/** Capabilities that accept everything, to exercise QEMU's rules. */
function all(): Capabilities {
  return new Capabilities({ supported: CAPABILITY_NAMES });
}

void suite("Capabilities", () => {
  test("query() lists QEMU 7.2's 21 capabilities in order, all off", () => {
    const caps = new Capabilities();
    assert.deepEqual(
      caps.query(),
      QEMU_72_ORDER.map((capability) => ({ capability, state: false })),
    );
    assert.deepEqual(caps.enabled(), []);
  });

  test("set() enables and disables supported capabilities; a later entry wins", () => {
    const caps = new Capabilities();
    caps.set([
      { capability: "events", state: true },
      { capability: "return-path", state: true },
    ]);
    assert.equal(caps.get("events"), true);
    assert.equal(caps.get("return-path"), true);
    assert.deepEqual(caps.enabled(), ["events", "return-path"]);
    caps.set([
      { capability: "events", state: true },
      { capability: "events", state: false },
    ]);
    assert.equal(caps.get("events"), false);
    caps.set([]);
    assert.deepEqual(caps.enabled(), ["return-path"]);
  });

  test("the capabilities Ferry implements can all be enabled", () => {
    const caps = new Capabilities();
    for (const name of FERRY_SUPPORTED_CAPABILITIES) caps.set([{ capability: name, state: true }]);
    assert.deepEqual(new Set(caps.enabled()), new Set(FERRY_SUPPORTED_CAPABILITIES));
    for (const name of [
      "events",
      "return-path",
      "auto-converge",
      "pause-before-switchover",
      "validate-uuid",
      "x-ignore-shared",
    ]) {
      assert.ok(FERRY_SUPPORTED_CAPABILITIES.has(name as CapabilityName), name);
    }
  });

  test("set() refuses to enable an unimplemented capability, but disabling it is fine", () => {
    const caps = new Capabilities();
    rejects(() => caps.set([{ capability: "xbzrle", state: true }]), "Capability 'xbzrle' is not supported by Ferry");
    caps.set([{ capability: "xbzrle", state: false }]);
    assert.equal(caps.get("xbzrle"), false);
    assert.equal(caps.query().length, 21);
  });

  test("set() rejects unknown names with QEMU's message", () => {
    rejects(
      () => new Capabilities().set([{ capability: "nope", state: true }]),
      "Parameter 'capability' does not accept value 'nope'",
    );
  });

  test("set() is atomic: a failing list changes nothing", () => {
    const caps = new Capabilities();
    rejects(
      () =>
        caps.set([
          { capability: "events", state: true },
          { capability: "multifd", state: true },
        ]),
      "Capability 'multifd' is not supported by Ferry",
    );
    assert.equal(caps.get("events"), false);
    const wide = all();
    wide.set([{ capability: "compress", state: true }]);
    rejects(
      () =>
        wide.set([
          { capability: "events", state: true },
          { capability: "multifd", state: true },
        ]),
      "Multifd is not compatible with compress",
    );
    assert.deepEqual(wide.enabled(), ["compress"]);
  });

  test("supported capabilities can be widened for the engine", () => {
    const caps = new Capabilities({ supported: [...FERRY_SUPPORTED_CAPABILITIES, "multifd"] });
    assert.equal(caps.isSupported("multifd"), true);
    caps.set([{ capability: "multifd", state: true }]);
    assert.equal(caps.get("multifd"), true);
    assert.throws(() => new Capabilities({ supported: ["bogus" as CapabilityName] }), TypeError);
  });

  const rules: [string, [CapabilityName, boolean][], string][] = [
    [
      "postcopy-ram excludes x-ignore-shared",
      [
        ["postcopy-ram", true],
        ["x-ignore-shared", true],
      ],
      "Postcopy is not compatible with ignore-shared",
    ],
    ["postcopy-preempt requires postcopy-ram", [["postcopy-preempt", true]], "Postcopy preempt requires postcopy-ram"],
    [
      "postcopy-preempt excludes compress",
      [
        ["postcopy-ram", true],
        ["postcopy-preempt", true],
        ["compress", true],
      ],
      "Postcopy preempt not compatible with compress",
    ],
    [
      "multifd excludes compress",
      [
        ["multifd", true],
        ["compress", true],
      ],
      "Multifd is not compatible with compress",
    ],
    [
      "zero-copy-send requires multifd",
      [["zero-copy-send", true]],
      "Zero copy only available for non-compressed non-TLS multifd migration",
    ],
    [
      "zero-copy-send excludes xbzrle",
      [
        ["multifd", true],
        ["zero-copy-send", true],
        ["xbzrle", true],
      ],
      "Zero copy only available for non-compressed non-TLS multifd migration",
    ],
    [
      "background-snapshot excludes x-colo",
      [
        ["background-snapshot", true],
        ["x-colo", true],
      ],
      "Background-snapshot is not compatible with x-colo",
    ],
    [
      "background-snapshot names the first incompatible capability in QEMU's order",
      [
        ["background-snapshot", true],
        ["validate-uuid", true],
        ["return-path", true],
      ],
      "Background-snapshot is not compatible with return-path",
    ],
  ];
  for (const [name, list, message] of rules) {
    test(`QEMU rule: ${name}`, () => {
      rejects(() => all().set(list.map(([capability, state]) => ({ capability, state }))), message);
    });
  }

  test("QEMU rules that pass: background-snapshot with block, zero-copy-send with plain multifd", () => {
    const caps = all();
    caps.set([
      { capability: "background-snapshot", state: true },
      { capability: "block", state: true },
    ]);
    const other = all();
    other.set([
      { capability: "multifd", state: true },
      { capability: "zero-copy-send", state: true },
    ]);
    assert.equal(other.get("zero-copy-send"), true);
  });

  test("zero-copy-send reads multifd-compression and TLS from the context", () => {
    const list = [
      { capability: "multifd", state: true },
      { capability: "zero-copy-send", state: true },
    ];
    const msg = "Zero copy only available for non-compressed non-TLS multifd migration";
    rejects(() => all().set(list, { multifdCompression: "zstd", tlsEnabled: false }), msg);
    rejects(() => all().set(list, { multifdCompression: "none", tlsEnabled: true }), msg);
    assert.doesNotThrow(() =>
      checkCapabilityRules(new Set(["multifd", "zero-copy-send"]), { multifdCompression: "none", tlsEnabled: false }),
    );
  });
});
