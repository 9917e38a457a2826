/**
 * docs/guide.md's example machine, run for real: snapshot and restore over tcp, a v1 stream into v2, and a
 * 1.1 machine talking to a 1.0 one through the compat property.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "ferry";
import { snapshotOverTcp, ToyMachine } from "../../examples/guide-machine.js";

void suite("the guide's example machine", () => {
  test("a snapshot over tcp restores RAM and device state", async () => {
    const a = new ToyMachine("toy-1.1");
    a.store8(0x1234, 0xab);
    a.store8(0x3ffff, 7);
    Object.assign(a.timer.state, { count: 42, period: 250, deadline: 1_000_000n, armed: true });
    a.timer.state.history = [1, 2, 3, 4];
    a.timer.state.scale.factor = 3;
    const b = new ToyMachine("toy-1.1");
    await snapshotOverTcp(a, b);
    assert.equal(b.ram.bytes[0x1234], 0xab);
    assert.equal(b.ram.bytes[0x3ffff], 7);
    assert.deepEqual(b.timer.state, a.timer.state);
    assert.equal(b.globalState.received, "running");
  });

  test("machine type 1.0 leaves the subsection out, so a 1.0 destination loads it", async () => {
    const a = new ToyMachine("toy-1.0");
    a.timer.state.scale.factor = 3; // not sent: the 1.0 compat property switches the subsection off
    a.timer.state.count = 9;
    const b = new ToyMachine("toy-1.0");
    await snapshotOverTcp(a, b);
    assert.equal(b.timer.state.count, 9);
    assert.equal(b.timer.state.scale.factor, 1);
  });

  test("a 1.1 machine type stream with the subsection fails cleanly on a 1.0 destination", async () => {
    const a = new ToyMachine("toy-1.1");
    a.timer.state.scale.factor = 3;
    const b = new ToyMachine("toy-1.0");
    await assert.rejects(snapshotOverTcp(a, b), (e) => isMigrationError(e, "CONFIG_MISMATCH"));
  });

  test("a postLoad hook that rejects the state fails the load with HOOK_FAILED", async () => {
    const a = new ToyMachine("toy-1.1");
    a.timer.state.period = 0;
    const b = new ToyMachine("toy-1.1");
    await assert.rejects(snapshotOverTcp(a, b), (e) => isMigrationError(e, "HOOK_FAILED"));
  });
});
