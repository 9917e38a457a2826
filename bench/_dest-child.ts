/**
 * Forks bench/_migrate-dest.ts (a destination machine, or a raw receiver, listening on tcp loopback) for the
 * migrate and compare benchmarks.
 */
import { type ChildProcess, fork } from "node:child_process";

/** A forked destination once it listens. */
export interface DestChild {
  readonly proc: ChildProcess;
  /** Where it listens. */
  readonly uri: string;
  /** Its final message (status, bytes, CPU time). */
  readonly result: Promise<Record<string, unknown>>;
}

/**
 * Forks the destination with `args` (`MODE MIB [prealloc]`) and resolves once it listens.
 *
 * @param onFork Called with the process as soon as it exists (e.g. to kill it on cleanup).
 * @returns The child; rejects when it fails to start or exits before listening.
 */
export function forkDestination(args: readonly string[], onFork?: (proc: ChildProcess) => void): Promise<DestChild> {
  const proc = fork(new URL("./_migrate-dest.ts", import.meta.url), [...args], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  onFork?.(proc);
  return new Promise((resolve, reject) => {
    const result = new Promise<Record<string, unknown>>((res) => {
      proc.on("message", (m: Record<string, unknown>) => {
        if (m.ready === undefined) res(m);
      });
    });
    proc.once("message", (m: { ready?: string }) => {
      if (m.ready === undefined) reject(new Error("destination did not start"));
      else resolve({ proc, uri: m.ready, result });
    });
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`destination exited with ${code}`)));
  });
}
