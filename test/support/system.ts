/**
 * Gating for tests that need a system package (QEMU, the RISC-V toolchain).
 *
 * Without the package a test skips and says why; with `FERRY_REQUIRE_SYSTEM=1` (CI) it fails instead.
 */
import { execFileSync } from "node:child_process";

/** Whether CI demands every system package. */
export const requireSystem = process.env.FERRY_REQUIRE_SYSTEM === "1";

/** Finds an executable on PATH, or returns undefined. */
export function which(binary: string): string | undefined {
  try {
    const out = execFileSync("/bin/sh", ["-c", `command -v ${binary}`], { encoding: "utf8" }).trim();
    return out === "" ? undefined : out;
  } catch {
    return undefined;
  }
}

/**
 * Tells a test whether to skip for a missing binary. Returns `false` when present; when missing it returns a skip
 * reason, or throws when FERRY_REQUIRE_SYSTEM=1.
 *
 * @example
 * ```ts
 * test("loads a real QEMU stream", { skip: skipUnless("qemu-system-x86_64", "qemu-system-x86") }, async () => {…});
 * ```
 */
export function skipUnless(binary: string, debianPackage: string): string | false {
  if (which(binary) !== undefined) return false;
  const reason = `${binary} not found: install Debian's ${debianPackage} (scripts/setup-system)`;
  if (requireSystem) throw new Error(`FERRY_REQUIRE_SYSTEM=1 but ${reason}`);
  process.stderr.write(`skip: ${reason}\n`);
  return reason;
}
