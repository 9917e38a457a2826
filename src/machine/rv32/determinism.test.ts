/**
 * Deterministic equivalence: N steps straight give exactly the same CPU/device state, RAM and UART output as k
 * steps, a save of the state (through plain objects and the shared-memory word layout) and RAM into a fresh
 * machine, and N - k more steps.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { Machine } from "./machine.js";
import { decodeMachineState, encodeMachineState, MACHINE_STATE_WORDS, type MachineState } from "./state.js";

const RAM = 4 << 20;
const elf = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../../../guests/${name}.elf`, import.meta.url)));

function boot(name: string, out: number[]): Machine {
  const m = new Machine({ ram: new Uint8Array(new SharedArrayBuffer(RAM)), onOutput: (b) => out.push(b) });
  m.loadElf(elf(name));
  return m;
}

const hash = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** A state round trip through the worker's shared word layout and structuredClone (what a migration carries). */
function roundTrip(s: MachineState): MachineState {
  const w = new Int32Array(MACHINE_STATE_WORDS);
  encodeMachineState(structuredClone(s), w);
  return decodeMachineState(w);
}

function checkSplit(name: string, n: number, k: number): void {
  const outA: number[] = [];
  const a = boot(name, outA);
  a.run(n);

  const outB: number[] = [];
  const b = boot(name, outB);
  b.run(k);
  const saved = roundTrip(b.getState());
  const ram = new Uint8Array(new SharedArrayBuffer(RAM));
  ram.set(b.ram);
  const c = new Machine({ ram, onOutput: (x) => outB.push(x) });
  c.setState(saved);
  c.run(n - k);

  assert.deepEqual(c.getState(), a.getState(), `${name}: state differs after ${k} + ${n - k}`);
  assert.equal(hash(c.ram), hash(a.ram), `${name}: RAM differs after ${k} + ${n - k}`);
  assert.deepEqual(outB, outA, `${name}: output differs after ${k} + ${n - k}`);
  assert.equal(a.cpu.instret + a.cpu.cycles > 0, true);
}

/** A reproducible random split point (the seed is in the test name). */
function splits(seed: number, n: number, count: number): number[] {
  let s = seed;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out.push(1 + (s % (n - 1)));
  }
  return out;
}

suite("Machine.run is deterministic across a state save/restore", () => {
  const seed = (Date.now() & 0xffff) + 1;
  for (const [name, n] of [
    ["sha", 3_000_000],
    ["dirty", 2_000_000],
    ["ticker", 20_000],
  ] as const) {
    test(`${name}: ${n} steps straight equal k + (${n} - k) (split seed ${seed})`, () => {
      for (const k of [...splits(seed, n, 3), 1, n - 1]) checkSplit(name, n, k);
    });
  }

  test("the split can fall inside wfi and right after a timer interrupt", () => {
    // ticker spends its time in wfi; splitting at every step of its first tick covers idle skips and traps.
    for (let k = 1400; k < 1700; k += 1) checkSplit("ticker", 1800, k);
  });
});
