/**
 * Machine-type compatibility of `ferry-rv32`: the current Ferry (1.1 descriptions) against a "1.0 Ferry" built from
 * the FROZEN 1.0 descriptions in `src/machine/rv32/_frozen-1.0.ts`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { isMigrationError } from "../../src/errors.js";
import { createFrozenRv32Devices10 } from "../../src/machine/rv32/_frozen-1.0.js";
import { Rv32SyncGuest } from "../../src/machine/rv32/rv32-sync-guest.js";
import type { MachineState } from "../../src/machine/rv32/state.js";
import { createRv32Devices, type Rv32DeviceSet } from "../../src/machine/rv32/vmstate.js";
import { MigrationDestination } from "../../src/migration/destination.js";
import { DEFAULT_SETTINGS, type MigrationSettings } from "../../src/migration/settings.js";
import { MigrationSource } from "../../src/migration/source.js";
import { loadVm, saveVm } from "../../src/savevm/save-vm.js";
import { createChannelPair } from "../../src/transport/memory-channel.js";

/** sha256 of the frozen fixture: if this fails, the fixture was edited. Restore it from git instead. */
const FROZEN_SHA256 = "c4677f9080a47f5e75dc8a58bc843cf0bbb8ae670ef20e5a71ede4db166d771b";
const MEM = 4 << 20;
const elf = new Uint8Array(readFileSync(new URL("../../guests/dirty.elf", import.meta.url)));

function settings(): () => MigrationSettings {
  const s = { ...DEFAULT_SETTINGS, maxBandwidth: 0, returnPath: true };
  return () => s;
}

/** A source that ran a while and holds an LR reservation and three bytes in the UART's RX FIFO. */
function busySource(devices: Rv32DeviceSet): Rv32SyncGuest {
  const g = new Rv32SyncGuest({ elf, memory: MEM, devices });
  g.run(200_000);
  const s = g.machine.getState();
  const rxFifo = new Uint8Array(16);
  rxFifo.set([0x61, 0x62, 0x63]);
  g.machine.setState({
    ...s,
    cpu: { ...s.cpu, reservationValid: 1, reservationAddr: 0x8010_0000, reservationValue: 7 },
    uart: { ...s.uart, fcr: 0x01, rxFifo, rxCount: 3, lsr: s.uart.lsr | 1 },
  });
  g.capture();
  return g;
}

async function snapshot(a: Rv32SyncGuest, b: Rv32SyncGuest): Promise<void> {
  const [ca, cb] = createChannelPair({ highWaterMark: 1 << 20 });
  await Promise.all([saveVm(a, ca), loadVm(b, cb)]);
  b.restore();
}

function withoutReservation(s: MachineState): MachineState {
  return { ...s, cpu: { ...s.cpu, reservationValid: 0, reservationAddr: 0, reservationValue: 0 } };
}

void suite("ferry-rv32 machine types 1.0 and 1.1", () => {
  test("the frozen 1.0 descriptions are unchanged", () => {
    const text = readFileSync(new URL("../../src/machine/rv32/_frozen-1.0.ts", import.meta.url));
    assert.equal(createHash("sha256").update(text).digest("hex"), FROZEN_SHA256);
  });

  test("1.1 → 1.1 carries the LR reservation (cpu/reservation) and the RX FIFO (uart/rx-fifo)", async () => {
    const a = busySource(createRv32Devices("ferry-rv32-1.1"));
    const b = new Rv32SyncGuest({ memory: MEM });
    await snapshot(a, b);
    assert.deepEqual(b.machine.getState(), a.machine.getState());
    assert.equal(b.machine.getState().cpu.reservationValid, 1);
  });

  test("1.1 Ferry under machine type 1.0 → 1.0 Ferry: loads; the reservation is dropped", async () => {
    const a = busySource(createRv32Devices("ferry-rv32-1.0"));
    const b = new Rv32SyncGuest({ memory: MEM, devices: createFrozenRv32Devices10() });
    await snapshot(a, b);
    assert.deepEqual(b.machine.getState(), withoutReservation(a.machine.getState()));
    assert.equal(b.machine.getState().uart.rxCount, 3);
  });

  test("1.0 Ferry → 1.1 Ferry under machine type 1.0 (live migration)", async () => {
    const a = new Rv32SyncGuest({ elf, memory: MEM, devices: createFrozenRv32Devices10(), stepLimit: 400_000 });
    const b = new Rv32SyncGuest({ memory: MEM, machineType: "ferry-rv32-1.0", stepLimit: 0 });
    await a.control.cont();
    await new Promise((r) => setTimeout(r, 10));
    const [ca, cb] = createChannelPair({ highWaterMark: 256 << 10 });
    const dst = new MigrationDestination(b, { settings: settings() });
    const src = new MigrationSource(a, { settings: settings() });
    dst.start(async () => cb);
    src.start(async () => ca);
    await Promise.all([src.done, dst.done]);
    assert.equal(src.status, "completed", src.error?.toString());
    assert.equal(dst.status, "completed", dst.error?.toString());
    assert.deepEqual(b.machine.getState(), a.machine.getState());
    assert.ok(Buffer.from(b.block.bytes).equals(Buffer.from(a.block.bytes)));
  });

  test("1.1 Ferry under machine type 1.1 → 1.0 Ferry fails cleanly; the source runs on unchanged", async () => {
    // A real 1.0 Ferry does not know machine type 1.1: the configuration section fails.
    const a = busySource(createRv32Devices("ferry-rv32-1.1"));
    const before = a.machine.getState();
    const b = new Rv32SyncGuest({ memory: MEM, devices: createFrozenRv32Devices10() });
    const [ca, cb] = createChannelPair({ highWaterMark: 1 << 20 });
    const load = loadVm(b, cb).catch((e: unknown) => {
      cb.abort(e instanceof Error ? e : undefined);
      throw e;
    });
    const [, loaded] = await Promise.allSettled([saveVm(a, ca), load]);
    assert.equal(loaded.status, "rejected");
    assert.ok(isMigrationError((loaded as PromiseRejectedResult).reason));

    // Even a 1.0 Ferry that accepted the name would refuse the unknown subsection.
    const lax: Rv32DeviceSet = { ...createFrozenRv32Devices10(), machineType: "ferry-rv32-1.1" };
    const c = new Rv32SyncGuest({ memory: MEM, devices: lax, stepLimit: 0 });
    const src = new MigrationSource(a, { settings: settings() });
    const dst = new MigrationDestination(c, { settings: settings() });
    a.machine.setState(before);
    await a.control.cont();
    const [c1, c2] = createChannelPair({ highWaterMark: 256 << 10 });
    dst.start(async () => c2);
    src.start(async () => c1);
    await Promise.all([src.done, dst.done]);
    assert.equal(dst.status, "failed");
    assert.ok(isMigrationError(dst.error, "SUBSECTION_MISMATCH"), dst.error?.toString());
    assert.match(String(dst.error?.message), /cpu\/reservation/);
    assert.equal(src.status, "failed");
    assert.equal(a.control.runState(), "running");
    await a.control.stop("paused");
    assert.equal(a.machine.getState().cpu.reservationValid, 1, "the source kept its reservation");
  });
});
