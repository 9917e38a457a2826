/**
 * The migration engine end to end in one process: a running synthetic machine migrated to another over real
 * transports, with the source's guarantees checked (state unchanged on failure, guest resumed).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { isMigrationError } from "../../src/errors.js";
import { MigrationDestination } from "../../src/migration/destination.js";
import type { MigrationEvent } from "../../src/migration/events.js";
import { DEFAULT_SETTINGS, type MigrationSettings } from "../../src/migration/settings.js";
import { MigrationSource } from "../../src/migration/source.js";
import type { Channel } from "../../src/transport/channel.js";
import { connect } from "../../src/transport/connect.js";
import { listen } from "../../src/transport/listen.js";
import { createChannelPair } from "../../src/transport/memory-channel.js";
import { SyntheticMachine, sameState } from "../support/synthetic-machine.js";

const dir = mkdtempSync(join(tmpdir(), "ferry-mig-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const machines: SyntheticMachine[] = [];
after(async () => {
  for (const m of machines) await m.dispose();
});

function machine(opts: ConstructorParameters<typeof SyntheticMachine>[0] = {}): SyntheticMachine {
  const m = new SyntheticMachine(opts);
  machines.push(m);
  return m;
}

interface Run {
  src: MigrationSource;
  dst: MigrationDestination;
  srcEvents: MigrationEvent[];
  dstEvents: MigrationEvent[];
}

function settings(over: Partial<MigrationSettings> = {}): () => MigrationSettings {
  const s = { ...DEFAULT_SETTINGS, maxBandwidth: 0, events: true, ...over };
  return () => s;
}

function startMigration(
  source: SyntheticMachine,
  dest: SyntheticMachine,
  connectFn: () => Promise<Channel>,
  acceptFn: () => Promise<Channel>,
  over: Partial<MigrationSettings> = {},
): Run {
  const srcEvents: MigrationEvent[] = [];
  const dstEvents: MigrationEvent[] = [];
  const dst = new MigrationDestination(dest, { settings: settings(over), onEvent: (e) => dstEvents.push(e) });
  const src = new MigrationSource(source, { settings: settings(over), onEvent: (e) => srcEvents.push(e) });
  dst.start(acceptFn);
  src.start(connectFn);
  return { src, dst, srcEvents, dstEvents };
}

async function transportPair(kind: string): Promise<[() => Promise<Channel>, () => Promise<Channel>]> {
  if (kind === "memory") {
    const [a, b] = createChannelPair({ highWaterMark: 4 << 20 });
    return [async () => a, async () => b];
  }
  if (kind === "exec") {
    // exec is one-way: the source writes into a file through `cat`, the destination reads it once complete.
    const file = join(dir, `exec-${Math.random()}.mig`);
    let written: () => void = () => {};
    const done = new Promise<void>((r) => {
      written = r;
    });
    return [
      async () => {
        const ch = await connect(`exec:cat > '${file}'`);
        return {
          ...ch,
          description: ch.description,
          canRead: ch.canRead,
          canWrite: ch.canWrite,
          read: () => ch.read(),
          write: (c: Uint8Array) => ch.write(c),
          end: async () => {
            await ch.end();
            written();
          },
          close: () => ch.close(),
          abort: (e?: Error) => ch.abort(e),
        };
      },
      async () => {
        await done;
        return (await listen(`exec:cat '${file}'`)).accept();
      },
    ];
  }
  const uri = kind === "tcp" ? "tcp:127.0.0.1:0" : `unix:${join(dir, `${Math.random()}.sock`)}`;
  const l = await listen(uri);
  return [() => connect(l.uri), () => l.accept()];
}

void suite("live migration of a running synthetic machine", () => {
  for (const kind of ["memory", "tcp", "unix", "exec"]) {
    const returnPath = kind !== "exec";
    test(`over ${kind}${returnPath ? " with the return path" : ""}: destination equals the source at stop time`, async () => {
      const a = machine({ dirtyRate: 20000 });
      const b = machine();
      a.fill(7);
      await a.control.cont();
      await new Promise((r) => setTimeout(r, 50));
      const [c, acc] = await transportPair(kind);
      const run = startMigration(a, b, c, acc, { returnPath });
      await Promise.all([run.src.done, run.dst.done]);
      assert.equal(run.src.status, "completed", run.src.error?.toString());
      assert.equal(run.dst.status, "completed", run.dst.error?.toString());
      assert.equal(a.control.runState(), "postmigrate");
      assert.equal(b.control.runState(), "running");
      await b.control.stop("paused");
      assert.equal(sameState(a, b), undefined);
      assert.ok(
        a.ioMemory?.some((x) => x !== 0),
        "the source staged the stream in its I/O memory",
      );
      if (kind === "memory") {
        assert.ok(
          b.ioMemory?.every((x) => x === 0),
          "an in-memory pair does not receive into the I/O memory",
        );
      } else {
        // The socket (accepted, or the exec command's stdout pipe) read the stream into the I/O memory.
        assert.ok(
          b.ioMemory?.some((x) => x !== 0),
          "the stream was received into the machine's I/O memory",
        );
      }
      const info = run.src.info();
      assert.equal(info.status, "completed");
      assert.ok((info.ram?.["dirty-sync-count"] ?? 0) >= 2);
      assert.ok((info.downtime ?? -1) >= 0);
      assert.ok((info.ram?.transferred ?? 0) > (info.ram?.["normal-bytes"] ?? 0));
      assert.ok((info.ram?.normal ?? 0) >= 2560, "every written page was sent at least once");
      const statuses = run.srcEvents.filter((e) => e.event === "MIGRATION").map((e) => e.data.status);
      assert.deepEqual(statuses, ["setup", "active", "completed"]);
      assert.ok(run.srcEvents.some((e) => e.event === "STOP"));
      assert.deepEqual(
        run.srcEvents.filter((e) => e.event === "MIGRATION_PASS").map((e) => e.data.pass)[0],
        1,
        "pass 1 comes at setup",
      );
      assert.ok(run.dstEvents.some((e) => e.event === "RESUME"));
    });
  }

  test("a paused source leaves the destination paused", async () => {
    const a = machine();
    const b = machine();
    a.fill(3);
    a.control.setRunState("paused");
    const [c, acc] = await transportPair("memory");
    const run = startMigration(a, b, c, acc, { returnPath: true });
    await Promise.all([run.src.done, run.dst.done]);
    assert.equal(run.src.status, "completed");
    assert.equal(b.control.runState(), "paused");
    assert.equal(sameState(a, b), undefined);
  });

  test("migration to an unreachable destination fails with the guest still running (bad_dest)", async () => {
    const a = machine({ dirtyRate: 1000 });
    a.fill(1);
    await a.control.cont();
    const l = await listen("tcp:127.0.0.1:0");
    const uri = l.uri;
    await l.close();
    const src = new MigrationSource(a, { settings: settings() });
    src.start(() => connect(uri));
    await src.done;
    assert.equal(src.status, "failed");
    assert.ok(isMigrationError(src.error, "TRANSPORT"));
    assert.equal(a.control.runState(), "running");
    assert.match(src.info()["error-desc"] ?? "", /./);
    await a.control.stop("paused");
  });

  test("cancel at random moments: the source resumes with its state unchanged, and a second migration succeeds", async () => {
    for (const delay of [0, 5, 20, 60]) {
      const a = machine();
      a.fill(11);
      await a.control.cont();
      await a.control.stop("paused");
      await a.control.cont();
      const b = machine();
      const [c, acc] = await transportPair("tcp");
      // Slow enough that cancel lands mid-stream.
      const run = startMigration(a, b, c, acc, { returnPath: true, maxBandwidth: 64 << 20 });
      await new Promise((r) => setTimeout(r, delay));
      run.src.cancel();
      await Promise.all([run.src.done, run.dst.done]);
      if (run.src.status === "completed") continue; // finished before the cancel landed
      assert.equal(run.src.status, "cancelled");
      assert.equal(a.control.runState(), "running");
      assert.equal(run.dst.status, "failed");
      const b2 = machine();
      const [c2, acc2] = await transportPair("tcp");
      const run2 = startMigration(a, b2, c2, acc2, { returnPath: true });
      await Promise.all([run2.src.done, run2.dst.done]);
      assert.equal(run2.src.status, "completed", run2.src.error?.toString());
      await b2.control.stop("paused");
      assert.equal(sameState(a, b2), undefined);
    }
  });

  test("a destination that dies at random moments: the source fails, resumes unchanged, and migrates again", async () => {
    // Kill points: inside the header, early RAM, mid RAM, and at a random byte count.
    // The stream of this 20 MiB machine is about 10.5 MiB (a quarter of its pages are data): every point lies inside.
    const points = [10, 64 << 10, 1 << 20, 1 + Math.floor(Math.random() * (8 << 20))];
    for (const killAt of points) {
      const a = machine();
      a.fill(5);
      a.control.setRunState("running");
      const before = machine();
      before.fill(5);
      const [c, acc] = await transportPair("tcp");
      const src = new MigrationSource(a, { settings: settings({ returnPath: true, maxBandwidth: 64 << 20 }) });
      src.start(c);
      const ch = await acc();
      let got = 0;
      while (got < killAt) {
        const chunk = await ch.read();
        if (chunk === null) break;
        got += chunk.length;
      }
      ch.abort();
      await src.done;
      assert.equal(src.status, "failed", `killed at ${killAt}`);
      assert.equal(a.control.runState(), "running");
      a.control.setRunState("paused");
      assert.equal(sameState(a, before), undefined, `killed at ${killAt}`);
      // A second migration of the same source then succeeds.
      a.control.setRunState("running");
      const b = machine();
      const [c2, acc2] = await transportPair("tcp");
      const run = startMigration(a, b, c2, acc2, { returnPath: true });
      await Promise.all([run.src.done, run.dst.done]);
      assert.equal(run.src.status, "completed", run.src.error?.toString());
      assert.equal(sameState(a, b), undefined);
    }
  });

  test("a dirty rate the bandwidth cannot match converges only once auto-converge throttles it", async () => {
    // 32 MiB/s sends 8192 pages/s; the guest dirties 20000 random pages/s, so only a throttle of ~60 % or more lets
    // the dirty set shrink from pass to pass.
    const limits = {
      returnPath: true,
      maxBandwidth: 32 << 20,
      downtimeLimit: 20,
      cpuThrottleInitial: 40,
      cpuThrottleIncrement: 40,
    };
    // Without auto-converge: still running after 2.5 s, then cancelled with the guest unharmed.
    {
      const a = machine({ blocksMiB: [16], dirtyRate: 20000 });
      const b = machine({ blocksMiB: [16] });
      a.fill(9);
      await a.control.cont();
      const [c, acc] = await transportPair("tcp");
      const run = startMigration(a, b, c, acc, limits);
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(run.src.status, "active", "it does not converge on its own");
      assert.ok((run.src.info().ram?.["dirty-sync-count"] ?? 0) >= 2);
      run.src.cancel();
      await Promise.all([run.src.done, run.dst.done]);
      assert.equal(run.src.status, "cancelled");
      assert.equal(a.control.runState(), "running");
    }
    // With auto-converge: the throttle rises until the rest fits, then it completes.
    const a = machine({ blocksMiB: [16], dirtyRate: 20000 });
    const b = machine({ blocksMiB: [16] });
    a.fill(9);
    await a.control.cont();
    const [c, acc] = await transportPair("tcp");
    let maxThrottle = 0;
    const poll = setInterval(() => {
      maxThrottle = Math.max(maxThrottle, a.throttle);
    }, 5);
    const run = startMigration(a, b, c, acc, { ...limits, autoConverge: true });
    const safety = setTimeout(() => run.src.cancel(), 30_000);
    await Promise.all([run.src.done, run.dst.done]);
    clearTimeout(safety);
    clearInterval(poll);
    assert.equal(run.src.status, "completed", run.src.error?.toString());
    assert.ok(maxThrottle >= 20, `throttle reached ${maxThrottle}%`);
    assert.equal(a.throttle, 0, "the throttle is lifted afterwards");
    await b.control.stop("paused");
    assert.equal(sameState(a, b), undefined);
  });

  test("pause-before-switchover waits for migrate-continue", async () => {
    const a = machine();
    const b = machine();
    a.fill(2);
    await a.control.cont();
    const [c, acc] = await transportPair("memory");
    const run = startMigration(a, b, c, acc, { returnPath: true, pauseBeforeSwitchover: true });
    while (run.src.status !== "pre-switchover") await new Promise((r) => setTimeout(r, 5));
    assert.equal(a.control.runState(), "finish-migrate");
    assert.throws(
      () => run.src.continueFrom("active"),
      (e) => isMigrationError(e, "INVALID_STATE"),
    );
    run.src.continueFrom("pre-switchover");
    await Promise.all([run.src.done, run.dst.done]);
    assert.equal(run.src.status, "completed");
    const statuses = run.srcEvents.filter((e) => e.event === "MIGRATION").map((e) => e.data.status);
    assert.deepEqual(statuses, ["setup", "active", "pre-switchover", "device", "completed"]);
  });

  test("a destination of another machine type fails with SHUT(1) and the source resumes", async () => {
    const a = machine();
    const b = machine({ machineType: "other-1.0" });
    a.fill(4);
    await a.control.cont();
    const [c, acc] = await transportPair("tcp");
    const run = startMigration(a, b, c, acc, { returnPath: true });
    await Promise.all([run.src.done, run.dst.done]);
    assert.equal(run.dst.status, "failed");
    assert.match(run.dst.info()["error-desc"] ?? "", /Machine type/);
    assert.equal(b.control.runState(), "paused");
    assert.equal(run.src.status, "failed");
    // The configuration comes before OPEN_RETURN_PATH, so this destination cannot answer SHUT(1): it just closes.
    assert.ok(isMigrationError(run.src.error), String(run.src.error));
    assert.equal(a.control.runState(), "running");
    await a.control.stop("paused");
  });

  test("a destination that fails after the return path opened answers SHUT(1); the source fails at once", async () => {
    const a = machine({ dirtyRate: 1000 });
    const b = machine({ blocksMiB: [8, 4] }); // RAM of another size: the RAM START section fails
    a.fill(6);
    await a.control.cont();
    const [c, acc] = await transportPair("tcp");
    const run = startMigration(a, b, c, acc, { returnPath: true, maxBandwidth: 16 << 20 });
    await Promise.all([run.src.done, run.dst.done]);
    assert.equal(run.dst.status, "failed");
    assert.ok(isMigrationError(run.dst.error, "BAD_RAM_RECORD"), String(run.dst.error));
    assert.equal(run.src.status, "failed");
    assert.ok(isMigrationError(run.src.error, "DESTINATION_FAILED"), String(run.src.error));
    // SHUT(1) ends it early: the source stops before it has sent its 20 MiB of RAM (at 16 MiB/s that would take
    // over a second), instead of noticing the failure only at the end of its stream.
    const sent = run.src.info().ram?.transferred ?? 0;
    assert.ok(sent < 20 << 20, `sent ${sent} bytes`);
    assert.equal(a.control.runState(), "running");
    await a.control.stop("paused");
  });
});
