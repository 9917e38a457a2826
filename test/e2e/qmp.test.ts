/**
 * End-to-end tests of the QMP server and client over real sockets.
 *
 * Imports go through the source tree: package.json has no `./qmp` subpath export yet.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { isMigrationError } from "../../src/errors.js";
import { CAPABILITY_NAMES, Capabilities } from "../../src/migration/capabilities.js";
import { DEFAULT_PARAMETERS, Parameters } from "../../src/migration/parameters.js";
import {
  isQmpError,
  type MachineControl,
  QmpClient,
  QmpError,
  QmpServer,
  schema as q,
  type RunState,
  registerMigrationConfigCommands,
} from "../../src/qmp/index.js";

let dir: string;
let counter = 0;
const sockPath = (): string => join(dir, `q${counter++}.sock`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "ferry-qmp-e2e-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A machine whose run state the tests can see. */
function fakeMachine(initial: RunState = "paused"): MachineControl & { state: RunState; quits: number } {
  const m = {
    state: initial,
    quits: 0,
    runState: () => m.state,
    stop: () => {
      if (m.state === "running") m.state = "paused";
    },
    cont: () => {
      if (m.state === "finish-migrate") throw new QmpError("GenericError", "Migration is not finalized yet");
      m.state = "running";
    },
    quit: () => {
      m.quits++;
    },
  };
  return m;
}

interface Setup {
  server: QmpServer;
  address: string;
  path: string;
  machine: ReturnType<typeof fakeMachine>;
  caps: Capabilities;
  params: Parameters;
  active: { value: boolean };
}

async function setup(options: ConstructorParameters<typeof QmpServer>[0] = {}): Promise<Setup> {
  const machine = fakeMachine();
  const server = new QmpServer({ machine, ...options });
  const caps = new Capabilities();
  const params = new Parameters();
  const active = { value: false };
  registerMigrationConfigCommands(server, caps, params, () => active.value);
  server.register("x-sleep", {
    args: q.object({ ms: q.uint("uint32") }),
    handler: async ({ ms }) => {
      await new Promise((r) => setTimeout(r, ms));
      return { slept: ms };
    },
  });
  const path = sockPath();
  const address = await server.listen(`unix:${path}`);
  return { server, address, path, machine, caps, params, active };
}

/** A raw line-level client, to send anything at all. */
class Raw {
  readonly socket: Socket;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string | undefined) => void)[] = [];
  #buffer = "";
  #ended = false;
  readonly closed: Promise<void>;
  /** Every byte received, to check line endings. */
  received = "";

  constructor(path: string) {
    this.socket = connect({ path });
    this.socket.setEncoding("utf8");
    this.socket.on("data", (text: string) => {
      this.received += text;
      this.#buffer += text;
      for (let i = this.#buffer.indexOf("\r\n"); i >= 0; i = this.#buffer.indexOf("\r\n")) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 2);
        const waiter = this.#waiters.shift();
        if (waiter !== undefined) waiter(line);
        else this.#lines.push(line);
      }
    });
    this.socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      this.socket.on("close", () => {
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w(undefined);
        resolve();
      }),
    );
  }

  /** The next message, parsed; fails after `timeoutMs`. */
  async next(timeoutMs = 3000): Promise<Record<string, unknown>> {
    const line = await this.nextLine(timeoutMs);
    assert.notEqual(line, undefined, "connection closed");
    return JSON.parse(line as string) as Record<string, unknown>;
  }

  nextLine(timeoutMs = 3000): Promise<string | undefined> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  /** Asserts nothing arrives for `ms`. */
  async silent(ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    assert.deepEqual(this.#lines, [], "unexpected messages");
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  async command(text: string): Promise<Record<string, unknown>> {
    this.send(`${text}\n`);
    return this.next();
  }

  async negotiate(): Promise<void> {
    const greeting = await this.next();
    assert.ok(Object.hasOwn(greeting, "QMP"));
    assert.deepEqual(await this.command('{"execute": "qmp_capabilities"}'), { return: {} });
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

const gerr = (desc: string, id?: unknown): Record<string, unknown> =>
  id === undefined ? { error: { class: "GenericError", desc } } : { error: { class: "GenericError", desc }, id };

void suite("QMP server: protocol", () => {
  test("greets with QEMU 7.2.0 and Ferry's package, no capabilities, CRLF line endings", async () => {
    const s = await setup();
    const raw = new Raw(s.path);
    try {
      assert.deepEqual(await raw.next(), {
        QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "ferry 0.1.0" }, capabilities: [] },
      });
      assert.ok(raw.received.endsWith("}\r\n"));
      assert.deepEqual(await raw.command('{"execute": "qmp_capabilities", "id": "neg"}'), { return: {}, id: "neg" });
      assert.ok(raw.received.endsWith('"neg"}\r\n'));
    } finally {
      await raw.close();
      await s.server.close();
    }
  });

  test("negotiation: only qmp_capabilities first, unavailable capabilities refused, no second negotiation", async () => {
    const s = await setup();
    const raw = new Raw(s.path);
    try {
      await raw.next();
      const expecting = {
        error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      };
      assert.deepEqual(await raw.command('{"execute": "query-status", "id": 1}'), { ...expecting, id: 1 });
      assert.deepEqual(await raw.command('{"execute": "no-such-command"}'), expecting);
      assert.deepEqual(
        await raw.command('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 2}'),
        gerr("Capability oob not available", 2),
      );
      assert.deepEqual(
        await raw.command('{"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}}'),
        gerr("Parameter 'null' does not accept value 'foo'"),
      );
      assert.deepEqual(
        await raw.command('{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}}'),
        gerr("Invalid parameter type for 'enable', expected: array"),
      );
      // Still negotiating after those failures.
      assert.deepEqual(await raw.command('{"execute": "query-version"}'), expecting);
      assert.deepEqual(await raw.command('{"execute": "qmp_capabilities", "arguments": {"enable": []}}'), {
        return: {},
      });
      assert.deepEqual(await raw.command('{"execute": "qmp_capabilities"}'), {
        error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" },
      });
      assert.deepEqual(await raw.command('{"execute": "query-version", "id": [1, {"a": null}]}'), {
        return: { qemu: { major: 7, minor: 2, micro: 0 }, package: "ferry 0.1.0" },
        id: [1, { a: null }],
      });
    } finally {
      await raw.close();
      await s.server.close();
    }
  });

  test("events go only to negotiated clients, to all of them, with QEMU's shape", async () => {
    const s = await setup();
    const clients = [new Raw(s.path), new Raw(s.path), new Raw(s.path)];
    const pending = new Raw(s.path);
    try {
      for (const c of clients) await c.negotiate();
      await pending.next();
      s.server.emit("MIGRATION", { status: "setup" });
      s.server.emit("STOP");
      for (const c of clients) {
        const e = await c.next();
        assert.equal(e.event, "MIGRATION");
        assert.deepEqual(e.data, { status: "setup" });
        const ts = e.timestamp as { seconds: number; microseconds: number };
        assert.ok(Number.isInteger(ts.seconds) && Math.abs(ts.seconds - Date.now() / 1000) < 60);
        assert.ok(Number.isInteger(ts.microseconds) && ts.microseconds >= 0 && ts.microseconds < 1_000_000);
        const stop = await c.next();
        assert.equal(stop.event, "STOP");
        assert.equal(Object.hasOwn(stop, "data"), false, "no data member when the event has none (as QEMU)");
      }
      await pending.silent();
      assert.equal(s.server.sessions.length, 4);
    } finally {
      await Promise.all([...clients, pending].map((c) => c.close()));
      await s.server.close();
    }
  });

  test("clients are independent: a slow command on one does not hold up another", async () => {
    const s = await setup();
    const a = new Raw(s.path);
    const b = new Raw(s.path);
    try {
      await a.negotiate();
      await b.negotiate();
      a.send('{"execute": "x-sleep", "arguments": {"ms": 300}, "id": "a"}\n');
      const started = Date.now();
      assert.deepEqual(await b.command('{"execute": "query-status", "id": "b"}'), {
        return: { status: "paused", singlestep: false, running: false },
        id: "b",
      });
      assert.ok(Date.now() - started < 250);
      assert.deepEqual(await a.next(), { return: { slept: 300 }, id: "a" });
    } finally {
      await a.close();
      await b.close();
      await s.server.close();
    }
  });

  test("one client's commands run in order, replies in order", async () => {
    const s = await setup();
    const raw = new Raw(s.path);
    try {
      await raw.negotiate();
      raw.send(
        '{"execute": "x-sleep", "arguments": {"ms": 100}, "id": 1}{"execute": "query-status", "id": 2}\n{"execute": "x-sleep", "arguments": {"ms": 1}, "id": 3}\n',
      );
      assert.equal((await raw.next()).id, 1);
      assert.equal((await raw.next()).id, 2);
      assert.equal((await raw.next()).id, 3);
    } finally {
      await raw.close();
      await s.server.close();
    }
  });
});

void suite("QMP server: hostile input", () => {
  let s: Setup;
  let raw: Raw;
  before(async () => {
    s = await setup({ maxMessageBytes: 64 * 1024 });
    raw = new Raw(s.path);
    await raw.negotiate();
  });
  after(async () => {
    await raw.close();
    await s.server.close();
  });

  /** After every bad input, the same connection must still answer. */
  async function stillAlive(): Promise<void> {
    assert.deepEqual(await raw.command('{"execute": "query-status", "id": "alive"}'), {
      return: { status: "paused", singlestep: false, running: false },
      id: "alive",
    });
  }

  const cases: [string, string, Record<string, unknown>][] = [
    ["malformed JSON", '{"execute": "query-status", "id": @}', gerr("JSON parse error, stray '@'")],
    [
      "a missing separator",
      '{"execute": "query-status" "id": 1}',
      gerr("JSON parse error, expected separator in dict"),
    ],
    ["a duplicate key", '{"execute": "stop", "execute": "cont"}', gerr("JSON parse error, duplicate key")],
    ["an array", "[1, 2]", gerr("QMP input must be a JSON object")],
    ["a string", '"query-status"', gerr("QMP input must be a JSON object")],
    ["a number", "42", gerr("QMP input must be a JSON object")],
    ["a stray closing brace", "}", gerr("JSON parse error, expecting value")],
    ["execute not a string", '{"execute": 5, "id": 1}', gerr("QMP input member 'execute' must be a string", 1)],
    ["execute missing", '{"id": 2}', gerr("QMP input lacks member 'execute'", 2)],
    [
      "arguments not an object",
      '{"execute": "query-status", "arguments": [1]}',
      gerr("QMP input member 'arguments' must be an object"),
    ],
    [
      "arguments null",
      '{"execute": "query-status", "arguments": null}',
      gerr("QMP input member 'arguments' must be an object"),
    ],
    ["an unknown top-level key", '{"execute": "query-status", "foo": 1}', gerr("QMP input member 'foo' is unexpected")],
    [
      "exec-oob (not offered)",
      '{"exec-oob": "migrate-pause", "id": 4}',
      gerr("QMP input member 'exec-oob' is unexpected", 4),
    ],
    [
      "a top-level __proto__",
      '{"execute": "query-status", "__proto__": {"x": 1}}',
      gerr("QMP input member '__proto__' is unexpected"),
    ],
    [
      "an argument __proto__",
      '{"execute": "query-status", "arguments": {"__proto__": 1}}',
      gerr("Parameter '__proto__' is unexpected"),
    ],
    [
      "an argument constructor",
      '{"execute": "query-status", "arguments": {"constructor": 1}}',
      gerr("Parameter 'constructor' is unexpected"),
    ],
    [
      "a nested __proto__",
      '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true, "__proto__": {}}]}}',
      gerr("Parameter 'capabilities[0].__proto__' is unexpected"),
    ],
    [
      "an unknown command",
      '{"execute": "no-such-command", "id": 5}',
      { error: { class: "CommandNotFound", desc: "The command no-such-command has not been found" }, id: 5 },
    ],
    [
      "a control character in a string",
      '{"execute": "query-\u0001status"}',
      gerr("JSON parse error, control character in string"),
    ],
    ["deep nesting", `${"[".repeat(200)}${"]".repeat(200)}`, gerr("JSON nesting depth limit exceeded")],
  ];
  for (const [name, input, reply] of cases) {
    test(`${name} gets one error reply and the connection goes on`, async () => {
      assert.deepEqual(await raw.command(input), reply);
      await stillAlive();
    });
  }

  test("nothing reaches Object.prototype", async () => {
    await raw.command('{"execute": "query-status", "arguments": {"__proto__": {"polluted": true}}}');
    await raw.command('{"__proto__": {"polluted": true}, "execute": "x"}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    await stillAlive();
  });

  test("invalid UTF-8 gets a parse error", async () => {
    raw.send(Buffer.from([...Buffer.from('{"execute": "query-status", "id": "'), 0xc3, 0x28, ...Buffer.from('"}\n')]));
    assert.deepEqual(await raw.next(), gerr("JSON parse error, invalid UTF-8 sequence"));
    await stillAlive();
  });

  test("an oversized message gets an error; the rest of its line is dropped", async () => {
    raw.send(`{"execute": "query-status", "id": "${"x".repeat(100 * 1024)}"} {"execute": "stop"}\n`);
    assert.deepEqual(await raw.next(), gerr("JSON parse error, message exceeds 65536 bytes"));
    await stillAlive();
  });

  test("an endless message (4 MiB, no newline) is dropped while it arrives, then the next line works", async () => {
    raw.send('{"execute": "query-status", "id": "');
    const block = "y".repeat(256 * 1024);
    for (let i = 0; i < 16; i++) raw.send(block);
    assert.deepEqual(await raw.next(), gerr("JSON parse error, message exceeds 65536 bytes"));
    raw.send("\n");
    await stillAlive();
  });

  test("a message spread over many writes is reassembled", async () => {
    const text = '{"execute": "query-status", "id": "split"}\n';
    for (const ch of text) raw.send(ch);
    assert.equal((await raw.next()).id, "split");
  });

  test("a client that stops reading is disconnected once maxOutputBytes are queued", async () => {
    const t = await setup({ maxOutputBytes: 64 * 1024 });
    const slow = new Raw(t.path);
    try {
      await slow.negotiate();
      slow.socket.pause();
      const payload = { blob: "z".repeat(16 * 1024) };
      for (let i = 0; i < 2000 && t.server.sessions.length > 0; i++) {
        t.server.emit("X_FLOOD", payload);
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(t.server.sessions.length, 0, "the non-reading client was dropped");
    } finally {
      slow.socket.destroy();
      await t.server.close();
    }
  });
});

void suite("QMP server: sockets", () => {
  test("the unix socket is created with mode 0600 (whatever the umask) and removed on close", async () => {
    const old = process.umask(0);
    let s: Setup;
    try {
      s = await setup();
    } finally {
      process.umask(old);
    }
    const mode = statSync(s.path).mode & 0o777;
    assert.equal(mode, 0o600, `mode ${mode.toString(8)}`);
    assert.ok(statSync(s.path).isSocket());
    await s.server.close();
    assert.throws(() => statSync(s.path), /ENOENT/);
  });

  test("a stale socket is replaced; a live one or a regular file is refused", async () => {
    const path = sockPath();
    // A stale socket: what a killed server leaves behind.
    const script = `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`;
    spawnSync(process.execPath, ["-e", script]);
    assert.ok(statSync(path).isSocket());
    const server = new QmpServer();
    await server.listen(`unix:${path}`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const other = new QmpServer();
    await assert.rejects(
      other.listen(`unix:${path}`),
      (e: unknown) => isMigrationError(e, "TRANSPORT") && /another server/.test(e.message),
    );
    await server.close();
    const file = join(dir, "regular-file");
    writeFileSync(file, "keep me");
    await assert.rejects(
      other.listen(`unix:${file}`),
      (e: unknown) => isMigrationError(e, "TRANSPORT") && /not a socket/.test(e.message),
    );
    assert.equal(statSync(file).isFile(), true);
    await other.close();
  });

  test("tcp listens on loopback only", async () => {
    const server = new QmpServer();
    try {
      for (const bad of ["tcp:0.0.0.0:0", "tcp:[::]:0", "tcp:192.0.2.1:0", "tcp:example.com:0"]) {
        await assert.rejects(
          server.listen(bad),
          (e: unknown) => isMigrationError(e, "BAD_URI") && /loopback/.test(e.message),
          bad,
        );
      }
      const address = await server.listen("tcp:127.0.0.1:0");
      assert.match(address, /^tcp:127\.0\.0\.1:[1-9][0-9]*$/);
      const client = await QmpClient.connect(address);
      assert.equal(client.greeting.QMP.version.package, "ferry 0.1.0");
      await client.close();
    } finally {
      await server.close();
    }
  });
});

void suite("QMP server: commands", () => {
  let s: Setup;
  let client: QmpClient;
  before(async () => {
    s = await setup();
    client = await QmpClient.connect(s.address);
  });
  after(async () => {
    await client.close();
    await s.server.close();
  });

  async function fails(promise: Promise<unknown>, desc: string, errorClass = "GenericError"): Promise<void> {
    await assert.rejects(promise, (e: unknown) => {
      assert.ok(isQmpError(e), String(e));
      assert.equal(e.errorClass, errorClass);
      assert.equal(e.desc, desc);
      return true;
    });
  }

  test("query-commands lists the registered commands", async () => {
    const names = (await client.execute("query-commands")).map((c) => c.name);
    for (const name of [
      "qmp_capabilities",
      "query-version",
      "query-commands",
      "query-status",
      "stop",
      "cont",
      "quit",
      "migrate-set-capabilities",
      "query-migrate-capabilities",
      "migrate-set-parameters",
      "query-migrate-parameters",
    ]) {
      assert.ok(names.includes(name), name);
    }
  });

  test("stop and cont change the run state and emit STOP / RESUME", async () => {
    client.clearEvents();
    assert.deepEqual(await client.execute("query-status"), { status: "paused", singlestep: false, running: false });
    await client.execute("stop");
    await assert.rejects(client.waitEvent("STOP", undefined, 100), (e: unknown) => isMigrationError(e, "TIMEOUT"));
    await client.execute("cont");
    const resume = await client.waitEvent("RESUME", undefined, 1000);
    assert.equal(resume.data, undefined);
    assert.deepEqual(await client.execute("query-status"), { status: "running", singlestep: false, running: true });
    await client.execute("stop");
    await client.waitEvent("STOP", undefined, 1000);
    assert.equal(s.machine.state, "paused");
    s.machine.state = "finish-migrate";
    await fails(client.execute("cont"), "Migration is not finalized yet");
    s.machine.state = "paused";
  });

  test("argument errors use QEMU's wording", async () => {
    await fails(client.execute("x-sleep"), "Parameter 'ms' is missing");
    await fails(client.execute("x-sleep", { ms: "long" }), "Parameter 'ms' expects uint64");
    await fails(client.execute("x-sleep", { ms: 2 ** 40 }), "Parameter 'ms' expects uint32_t");
    await fails(client.execute("x-sleep", { ms: 1, extra: true }), "Parameter 'extra' is unexpected");
    const untyped = client.execute.bind(client) as (command: string, args?: unknown) => Promise<unknown>;
    await fails(untyped("query-status", { a: 1 }), "Parameter 'a' is unexpected");
    await fails(client.execute("no-such-command"), "The command no-such-command has not been found", "CommandNotFound");
  });

  test("query-migrate-capabilities / -parameters return QEMU 7.2's lists and defaults", async () => {
    const caps = await client.execute("query-migrate-capabilities");
    assert.deepEqual(
      caps,
      CAPABILITY_NAMES.map((capability) => ({ capability, state: false })),
    );
    assert.deepEqual(await client.execute("query-migrate-parameters"), { ...DEFAULT_PARAMETERS });
  });

  test("migrate-set-capabilities: supported ones, Ferry's refusal, QEMU's rules, refused while active", async () => {
    await client.execute("migrate-set-capabilities", {
      capabilities: [
        { capability: "events", state: true },
        { capability: "return-path", state: true },
      ],
    });
    assert.equal(s.caps.get("events"), true);
    await fails(
      client.execute("migrate-set-capabilities", { capabilities: [{ capability: "postcopy-ram", state: true }] }),
      "Capability 'postcopy-ram' is not supported by Ferry",
    );
    await fails(
      client.execute("migrate-set-capabilities", { capabilities: [{ capability: "nope" as never, state: true }] }),
      "Parameter 'capability' does not accept value 'nope'",
    );
    s.active.value = true;
    await fails(
      client.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: false }] }),
      "There's a migration process in progress",
    );
    // Parameters may change during a migration, as in QEMU.
    await client.execute("migrate-set-parameters", { "max-bandwidth": 1 << 20 });
    s.active.value = false;
    await client.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: false }] });
    const states = await client.execute("query-migrate-capabilities");
    assert.deepEqual(
      states.filter((c) => c.state).map((c) => c.capability),
      ["return-path"],
    );
  });

  test("migrate-set-parameters: ranges, atomicity, TLS clearing", async () => {
    await fails(
      client.execute("migrate-set-parameters", { "downtime-limit": 2_000_001 }),
      "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
    );
    await fails(
      client.execute("migrate-set-parameters", { "downtime-limit": 10, "announce-step": 0 }),
      "Parameter 'announce_step' expects a value between 0 and 10000",
    );
    assert.equal((await client.execute("query-migrate-parameters"))["downtime-limit"], 300);
    await fails(
      client.execute("migrate-set-parameters", { "tls-creds": 5 } as never),
      "Invalid parameter type for 'tls-creds', expected: StrOrNull",
    );
    await client.execute("migrate-set-parameters", { "tls-creds": "tls0", "downtime-limit": 10 });
    assert.equal(s.params.get("tls-creds"), "tls0");
    await client.execute("migrate-set-parameters", { "tls-creds": null });
    const p = await client.execute("query-migrate-parameters");
    assert.equal(p["tls-creds"], "");
    assert.equal(p["downtime-limit"], 10);
    await client.execute("migrate-set-parameters", {
      "block-bitmap-mapping": [{ "node-name": "drive0", alias: "d0", bitmaps: [{ name: "b", alias: "b0" }] }],
    });
    assert.deepEqual((await client.execute("query-migrate-parameters"))["block-bitmap-mapping"], [
      { "node-name": "drive0", alias: "d0", bitmaps: [{ name: "b", alias: "b0" }] },
    ]);
  });

  test("handler errors: MigrationError and QmpError classes reach the client", async () => {
    s.server.register("x-fail", {
      args: q.object({ kind: q.enumOf(["migration", "device", "bug"]) }),
      handler: ({ kind }) => {
        if (kind === "device") throw new QmpError("DeviceNotFound", "Device 'nic0' not found");
        if (kind === "bug") throw new TypeError("something broke");
        throw new (class extends Error {})("unused");
      },
    });
    await fails(client.execute("x-fail", { kind: "device" }), "Device 'nic0' not found", "DeviceNotFound");
    await fails(client.execute("x-fail", { kind: "bug" }), "something broke");
    assert.throws(() => s.server.register("x-fail", { args: q.NO_ARGS, handler: () => ({}) }), TypeError);
  });
});

void suite("QMP client", () => {
  test("pending commands and waits fail with TRANSPORT when the server goes away", async () => {
    const s = await setup();
    const client = await QmpClient.connect(s.address);
    const closed = new Promise<Error | undefined>((r) => client.on("close", r));
    const slow = assert.rejects(client.execute("x-sleep", { ms: 1000 }), (e: unknown) =>
      isMigrationError(e, "TRANSPORT"),
    );
    const waiting = assert.rejects(client.waitEvent("MIGRATION", undefined, 5000), (e: unknown) =>
      isMigrationError(e, "TRANSPORT"),
    );
    await new Promise((r) => setTimeout(r, 50));
    await s.server.close();
    await slow;
    await waiting;
    await closed;
    assert.equal(client.closed, true);
    await assert.rejects(client.execute("query-status"), (e: unknown) => isMigrationError(e, "TRANSPORT"));
  });

  test("connect fails cleanly: refused, not QMP, timeout", async () => {
    await assert.rejects(QmpClient.connect(`unix:${join(dir, "nobody.sock")}`), (e: unknown) =>
      isMigrationError(e, "TRANSPORT"),
    );
    const silent = createServer(() => {});
    const notQmp = createServer((sock) => sock.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    const p1 = sockPath();
    const p2 = sockPath();
    await new Promise<void>((r) => silent.listen(p1, () => r()));
    await new Promise<void>((r) => notQmp.listen(p2, () => r()));
    try {
      await assert.rejects(QmpClient.connect(`unix:${p1}`, { timeoutMs: 200 }), (e: unknown) =>
        isMigrationError(e, "TIMEOUT"),
      );
      await assert.rejects(QmpClient.connect(`unix:${p2}`, { timeoutMs: 2000 }), (e: unknown) =>
        isMigrationError(e, "TRANSPORT"),
      );
    } finally {
      silent.close();
      notQmp.close();
    }
  });

  test("waitEvent sees events that arrived before it was called, once", async () => {
    const s = await setup();
    const client = await QmpClient.connect(s.address);
    try {
      const seen: string[] = [];
      client.on("event", (e) => seen.push(e.event));
      s.server.emit("MIGRATION", { status: "setup" });
      s.server.emit("MIGRATION", { status: "active" });
      await client.execute("query-status");
      const active = await client.waitEvent("MIGRATION", (e) => e.data?.status === "active", 1000);
      assert.equal(active.data?.status, "active");
      const setupEvent = await client.waitEvent("MIGRATION", undefined, 1000);
      assert.equal(setupEvent.data?.status, "setup");
      await assert.rejects(client.waitEvent("MIGRATION", undefined, 50), (e: unknown) =>
        isMigrationError(e, "TIMEOUT"),
      );
      assert.deepEqual(seen, ["MIGRATION", "MIGRATION"]);
    } finally {
      await client.close();
      await s.server.close();
    }
  });

  test("commandTimeoutMs bounds a reply", async () => {
    const s = await setup();
    const client = await QmpClient.connect(s.address, { commandTimeoutMs: 100 });
    try {
      await assert.rejects(client.execute("x-sleep", { ms: 1000 }), (e: unknown) => isMigrationError(e, "TIMEOUT"));
    } finally {
      await client.close();
      await s.server.close();
    }
  });

  test("quit: SHUTDOWN event, reply, then the connection closes and the machine's quit hook runs", async () => {
    const s = await setup();
    const client = await QmpClient.connect(s.address);
    const closed = new Promise<void>((r) => client.on("close", () => r()));
    assert.deepEqual(await client.execute("quit"), {});
    const shutdown = await client.waitEvent("SHUTDOWN", undefined, 1000);
    assert.deepEqual(shutdown.data, { guest: false, reason: "host-qmp-quit" });
    await closed;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.machine.quits, 1);
    await s.server.close();
  });

  test("quit without a machine closes the server", async () => {
    const server = new QmpServer();
    const path = sockPath();
    const client = await QmpClient.connect(await server.listen(`unix:${path}`));
    await client.execute("quit");
    await server.close();
    assert.throws(() => statSync(path), /ENOENT/);
    assert.equal(server.addresses.length, 0);
  });
});
