/**
 * Deterministic equivalence of the `ferry-rv32` machine through the real savevm / vmstate / ram path: running N
 * steps straight gives exactly the CPU and device state and RAM of running k steps, saving, loading into a fresh
 * machine and running N − k more; by snapshot (saveVm → memory channel → loadVm) and by live migration
 * (MigrationSource / MigrationDestination over a memory channel, stopped at a random point).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { Rv32SyncGuest } from "../../src/machine/rv32/rv32-sync-guest.js";
import { MigrationDestination } from "../../src/migration/destination.js";
import { DEFAULT_SETTINGS, type MigrationSettings } from "../../src/migration/settings.js";
import { MigrationSource } from "../../src/migration/source.js";
import { loadVm, saveVm } from "../../src/savevm/save-vm.js";
import { createChannelPair } from "../../src/transport/memory-channel.js";

const MEM = 8 << 20;
const guests = ["dirty", "ticker", "sha"] as const;
const elfs = Object.fromEntries(
  guests.map((g) => [g, new Uint8Array(readFileSync(new URL(`../../guests/${g}.elf`, import.meta.url)))]),
) as Record<(typeof guests)[number], Uint8Array>;

function ramHash(g: Rv32SyncGuest): string {
  return createHash("sha256").update(g.block.bytes).digest("hex");
}

function fingerprint(g: Rv32SyncGuest): { state: unknown; ram: string; out: string } {
  return { state: g.machine.getState(), ram: ramHash(g), out: "" };
}

function settings(): () => MigrationSettings {
  const s = { ...DEFAULT_SETTINGS, maxBandwidth: 0, returnPath: true };
  return () => s;
}

/** A seeded PRNG so a failure can be replayed (the seed is in the test name). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.FERRY_SEED ?? Date.now() % 100000);

void suite(`ferry-rv32 deterministic equivalence (seed ${SEED})`, () => {
  const rand = rng(SEED);
  for (const name of guests) {
    const N = name === "sha" ? 600_000 : 1_500_000;
    test(`${name}: N straight = k, saveVm, loadVm into a fresh machine, N − k`, async () => {
      const straight = new Rv32SyncGuest({ elf: elfs[name], memory: MEM });
      straight.run(N);
      const want = fingerprint(straight);

      for (let trial = 0; trial < 3; trial++) {
        const k = 1 + Math.floor(rand() * (N - 1));
        const a = new Rv32SyncGuest({ elf: elfs[name], memory: MEM });
        a.run(k);
        a.capture();
        const b = new Rv32SyncGuest({ memory: MEM });
        const [ca, cb] = createChannelPair({ highWaterMark: 1 << 20 });
        await Promise.all([saveVm(a, ca), loadVm(b, cb)]);
        b.restore();
        b.machine.bootImage = a.machine.bootImage;
        b.run(N - k);
        assert.deepEqual(fingerprint(b), want, `k = ${k}`);
        // The source is untouched by saving: it continues to the same end.
        a.restore();
        a.run(N - k);
        assert.deepEqual(fingerprint(a), want, `source after save, k = ${k}`);
      }
    });

    test(`${name}: N straight = live migration at a random point, then the rest`, async () => {
      const straight = new Rv32SyncGuest({ elf: elfs[name], memory: MEM });
      straight.run(N);
      const want = fingerprint(straight);

      const limit = Math.floor(N / 2) + Math.floor(rand() * (N / 4));
      const a = new Rv32SyncGuest({
        elf: elfs[name],
        memory: MEM,
        slice: 5000 + Math.floor(rand() * 20000),
        stepLimit: limit,
      });
      const b = new Rv32SyncGuest({ memory: MEM, stepLimit: 0 });
      await a.control.cont();
      await new Promise((r) => setTimeout(r, 5 + rand() * 20));
      const [ca, cb] = createChannelPair({ highWaterMark: 256 << 10 });
      const dst = new MigrationDestination(b, { settings: settings() });
      const src = new MigrationSource(a, { settings: settings() });
      dst.start(async () => cb);
      src.start(async () => ca);
      await Promise.all([src.done, dst.done]);
      assert.equal(src.status, "completed", src.error?.toString());
      assert.equal(dst.status, "completed", dst.error?.toString());
      assert.equal(b.control.runState(), "running");
      const k = a.steps;
      assert.ok(k > 0 && k < N, `k = ${k}`);
      b.machine.bootImage = a.machine.bootImage;
      b.run(N - k);
      assert.deepEqual(fingerprint(b), want, `k = ${k}`);
    });
  }
});
