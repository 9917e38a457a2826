/**
 * `Rv32Machine` (the vCPU in a worker thread) as a migratable guest: stop → save → cont leaves the guest exactly
 * as it was, and a load fully decides what the next run starts from.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, suite, test } from "node:test";
import { checkDirtyInvariant } from "../../src/machine/rv32/dirty-invariant.js";
import { RV32_RAM_IDSTR, Rv32Machine } from "../../src/machine/rv32/rv32-machine.js";
import { loadVm, saveVm } from "../../src/savevm/save-vm.js";
import { createChannelPair } from "../../src/transport/memory-channel.js";

const MEM = 16 << 20;
const elf = new Uint8Array(readFileSync(new URL("../../guests/dirty.elf", import.meta.url)));
const machines: Rv32Machine[] = [];
after(async () => {
  for (const m of machines) await m.dispose();
});

function machine(withElf: boolean): Rv32Machine {
  const m = new Rv32Machine({ memory: MEM, ...(withElf ? { elf } : {}) });
  machines.push(m);
  return m;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

void suite("Rv32Machine", () => {
  test("has one RAM block named as QEMU's virt machine names it, and the device sections", () => {
    const m = machine(true);
    assert.equal(m.block.idstr, RV32_RAM_IDSTR);
    assert.equal(m.block.idstr, "riscv_virt_board.ram");
    const ids = m.registry.entries.map((e) => e.idstr);
    for (const id of ["ram", "cpu", "clint", "uart", "finisher", "globalstate"]) assert.ok(ids.includes(id), id);
    assert.equal(m.config.machineType, "ferry-rv32-1.1");
  });

  test("stop → saveVm → loadVm into a fresh machine: the save changes nothing, the load decides the next run", async () => {
    const a = machine(true);
    const b = machine(false);
    await a.start();
    await b.start();
    await a.control.cont();
    await sleep(100);
    await a.control.stop("paused");
    const stopped = a.vcpu.getState();
    assert.deepEqual(a.savedState(), stopped, "stop copies the vCPU state into the vmstate objects");
    const ramBefore = Buffer.from(a.block.bytes);
    const [ca, cb] = createChannelPair({ highWaterMark: 1 << 20 });
    await Promise.all([saveVm(a, ca), loadVm(b, cb)]);
    assert.deepEqual(a.vcpu.getState(), stopped, "saving did not touch the vCPU");
    assert.ok(Buffer.from(a.block.bytes).equals(ramBefore), "saving did not touch RAM");
    assert.deepEqual(b.savedState(), stopped, "the destination's vmstate objects hold the source's state");
    assert.ok(Buffer.from(b.block.bytes).equals(ramBefore), "the destination's RAM is the source's");

    await b.control.cont();
    await sleep(100);
    await b.control.stop("paused");
    const after1 = b.vcpu.getState();
    assert.ok(after1.cpu.instret > stopped.cpu.instret, "the destination ran on from the loaded state");
    assert.equal(checkDirtyInvariant(b.block.bytes, 1 << 20, MEM).errors, 0);

    // The source resumes exactly where it stopped (no state pushed: nothing changed).
    await a.control.cont();
    await sleep(50);
    await a.control.stop("paused");
    assert.ok(a.vcpu.getState().cpu.instret > stopped.cpu.instret);
    assert.equal(checkDirtyInvariant(a.block.bytes, 1 << 20, MEM).errors, 0);
  });
});
