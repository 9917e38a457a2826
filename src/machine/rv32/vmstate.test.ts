import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../../errors.js";
import * as vm from "../../vmstate/index.js";
import { ByteReader } from "../../wire/byte-reader.js";
import { encodeBytes } from "../../wire/byte-writer.js";
import { Machine } from "./machine.js";
import {
  clintDevice,
  cpuDevice,
  cpuFromWire,
  cpuToWire,
  createRv32Devices,
  rv32MachineType,
  uartDevice,
} from "./vmstate.js";

function save(dev: vm.AnyDevice, state: object): Uint8Array {
  return encodeBytes((w) => {
    vm.saveDevice(w, dev, state);
  });
}

function load(dev: vm.AnyDevice, state: object, bytes: Uint8Array, version: number): void {
  vm.loadDevice(ByteReader.fromBytes(bytes), dev, state, version);
}

function bootState() {
  const m = new Machine({ ram: new Uint8Array(new SharedArrayBuffer(1 << 20)) });
  return m.getState();
}

void suite("ferry-rv32 vmstate descriptions", () => {
  test("rv32MachineType() knows ferry-rv32 (newest), 1.1 and 1.0, and refuses others", () => {
    assert.equal(rv32MachineType("ferry-rv32").name, "ferry-rv32-1.1");
    assert.equal(rv32MachineType("ferry-rv32-1.1").migrateReservation, true);
    assert.equal(rv32MachineType("ferry-rv32-1.0").migrateReservation, false);
    assert.throws(() => rv32MachineType("ferry-rv32-0.9"), /Unknown machine type/);
  });

  test("capture() then restore() gives back the machine state exactly", () => {
    const s = bootState();
    s.cpu.x[5] = 0xdeadbeef;
    s.cpu.cycles = 2 ** 40 + 3;
    s.cpu.reservationValid = 1;
    s.cpu.reservationAddr = 0x80001000;
    s.uart.rxCount = 2;
    s.uart.rxFifo[0] = 0x41;
    s.uart.rxFifo[1] = 0x42;
    s.clint.mtimecmpHi = 0xffffffff;
    const d = createRv32Devices();
    d.capture(s);
    assert.deepEqual(d.restore(), s);
  });

  test("cpu: a version-1 stream (no `wfi`, the `since: 2` field) loads with wfi = 0", () => {
    const st = vm.initialState(cpuDevice);
    cpuToWire({ ...bootState().cpu, waitingForInterrupt: 1 }, st);
    const v2 = save(cpuDevice, st);
    const loaded = vm.initialState(cpuDevice);
    loaded.waitingForInterrupt = 1;
    load(cpuDevice, loaded, v2.subarray(0, v2.length - 1), 1);
    assert.equal(loaded.waitingForInterrupt, 0);
    assert.equal(loaded.pc, st.pc);
    const again = vm.initialState(cpuDevice);
    load(cpuDevice, again, v2, 2);
    assert.equal(again.waitingForInterrupt, 1);
  });

  test("cpu/reservation is sent only with a reservation held and the compat property on", () => {
    const base = save(cpuDevice, vm.initialState(cpuDevice)).length;
    for (const [compat, valid, extra] of [
      [1, 1, true],
      [1, 0, false],
      [0, 1, false],
    ] as const) {
      const st = vm.initialState(cpuDevice);
      cpuToWire({ ...bootState().cpu, reservationValid: valid, reservationAddr: 0x80000040 }, st);
      st.migrateReservation = compat;
      const bytes = save(cpuDevice, st);
      assert.equal(bytes.length > base, extra, `compat ${compat} valid ${valid}`);
      const back = vm.initialState(cpuDevice);
      back.reservation.valid = 1;
      load(cpuDevice, back, bytes, 2);
      assert.equal(cpuFromWire(back).reservationValid, extra ? 1 : 0);
    }
  });

  test("uart/rx-fifo is sent only when the FIFO holds bytes", () => {
    const st = vm.initialState(uartDevice);
    const empty = save(uartDevice, st).length;
    st.rxFifo.count = 3;
    st.rxFifo.data = new Uint8Array([1, 2, 3]);
    const full = save(uartDevice, st);
    assert.ok(full.length > empty);
    const back = vm.initialState(uartDevice);
    load(uartDevice, back, full, 1);
    assert.deepEqual([...back.rxFifo.data], [1, 2, 3]);
    const cleared = vm.initialState(uartDevice);
    cleared.rxFifo.count = 5;
    load(uartDevice, cleared, full.subarray(0, empty), 1);
    assert.equal(cleared.rxFifo.count, 0, "a stream without the subsection means an empty FIFO");
  });

  test("a hostile value fails the load in postLoad, naming the field", () => {
    const st = vm.initialState(cpuDevice);
    cpuToWire(bootState().cpu, st);
    st.pc = 0x80000002; // misaligned
    const bytes = save(cpuDevice, st);
    const into = vm.initialState(cpuDevice);
    assert.throws(
      () => load(cpuDevice, into, bytes, 2),
      (e: unknown) => isMigrationError(e) && /pc/.test(String((e as Error).message) + String((e as Error).cause)),
    );
    const c = vm.initialState(clintDevice);
    c.msip = 7;
    assert.throws(() => load(clintDevice, vm.initialState(clintDevice), save(clintDevice, c), 1), isMigrationErrorLike);
  });
});

function isMigrationErrorLike(e: unknown): boolean {
  return isMigrationError(e);
}
