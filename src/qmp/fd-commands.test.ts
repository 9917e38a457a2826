import assert from "node:assert/strict";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { queryFdSets, registeredFdNames, takeFd } from "../transport/fd-registry.js";
import { QmpClient } from "./client.js";
import { type FdRegistry, NO_FD_DESC, registerFdCommands } from "./fd-commands.js";
import { isQmpError } from "./qmp-error.js";
import { QmpServer } from "./server.js";

/** An in-memory registry that records what it was asked and closes nothing. */
function fakeRegistry(): FdRegistry & {
  named: Map<string, number>;
  sets: Map<number, { fd: number; opaque?: string }[]>;
} {
  const named = new Map<string, number>();
  const sets = new Map<number, { fd: number; opaque?: string }[]>();
  return {
    named,
    sets,
    registerFd: (name, fd) => void named.set(name, fd),
    releaseFd: (name) => named.delete(name),
    registeredFdNames: () => [...named.keys()],
    addFdToSet: (fd, options) => {
      let id = options.fdsetId ?? 0;
      if (options.fdsetId === undefined) while (sets.has(id)) id++;
      const set = sets.get(id) ?? [];
      set.push(options.opaque === undefined ? { fd } : { fd, opaque: options.opaque });
      sets.set(id, set);
      return { fdsetId: id, fd };
    },
    removeFdFromSet: (id, fd) => {
      const set = sets.get(id);
      if (set === undefined) return false;
      const left = fd === undefined ? [] : set.filter((m) => m.fd !== fd);
      if (left.length === set.length) return false;
      if (left.length === 0) sets.delete(id);
      else sets.set(id, left);
      return true;
    },
    queryFdSets: () => [...sets].map(([fdsetId, fds]) => ({ fdsetId, fds: [...fds] })),
  };
}

async function rejectsWith(promise: Promise<unknown>, desc: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isQmpError(e, "GenericError"), String(e));
    assert.equal(e.desc, desc);
    return true;
  });
}

void suite("fd commands", () => {
  let dir: string;
  let fileFds: number[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "ferry-fd-"));
    fileFds = [0, 1, 2, 3].map((i) => openSync(join(dir, `f${i}`), "w+"));
  });
  after(() => {
    for (const fd of fileFds) {
      try {
        closeSync(fd);
      } catch {
        // closed by closefd / remove-fd
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(registry?: FdRegistry): Promise<{ server: QmpServer; client: QmpClient }> {
    const server = new QmpServer();
    registerFdCommands(server, registry === undefined ? {} : { registry });
    const address = await server.listen(`unix:${join(dir, `qmp-${Math.random().toString(36).slice(2)}.sock`)}`);
    return { server, client: await QmpClient.connect(address) };
  }

  test("without an fd they fail as QEMU does without SCM_RIGHTS", async () => {
    const { server, client } = await start(fakeRegistry());
    try {
      await rejectsWith(client.execute("getfd", { fdname: "mig" }), NO_FD_DESC);
      await rejectsWith(client.execute("add-fd", {}), NO_FD_DESC);
      assert.ok(NO_FD_DESC.startsWith("No file descriptor supplied via SCM_RIGHTS"));
    } finally {
      await client.close();
      await server.close();
    }
  });

  test("getfd/closefd register and release inherited descriptors with QEMU's messages", async () => {
    const registry = fakeRegistry();
    const { server, client } = await start(registry);
    const [a, b] = fileFds as [number, number];
    try {
      await client.execute("getfd", { fdname: "mig", fd: a });
      assert.equal(registry.named.get("mig"), a);
      await rejectsWith(
        client.execute("getfd", { fdname: "other", fd: a }),
        `File descriptor ${a} is already registered`,
      );
      await rejectsWith(
        client.execute("getfd", { fdname: "1x", fd: b }),
        "Parameter 'fdname' expects a name not starting with a digit",
      );
      await rejectsWith(
        client.execute("getfd", { fdname: "x", fd: 1 }),
        "Parameter 'fd' expects an open inherited file descriptor (3 or above)",
      );
      await rejectsWith(
        client.execute("getfd", { fdname: "x", fd: 999_999 }),
        "Parameter 'fd' expects an open inherited file descriptor (3 or above)",
      );
      await client.execute("closefd", { fdname: "mig" });
      await rejectsWith(client.execute("closefd", { fdname: "mig" }), "File descriptor named 'mig' not found");
    } finally {
      await client.close();
      await server.close();
    }
  });

  test("add-fd/remove-fd/query-fdsets manage fd sets", async () => {
    const registry = fakeRegistry();
    const { server, client } = await start(registry);
    const [a, b] = fileFds as [number, number];
    try {
      assert.deepEqual(await client.execute("add-fd", { fd: a, opaque: "rw" }), { "fdset-id": 0, fd: a });
      assert.deepEqual(await client.execute("add-fd", { "fdset-id": 7, fd: b }), { "fdset-id": 7, fd: b });
      assert.deepEqual(await client.execute("query-fdsets"), [
        { "fdset-id": 0, fds: [{ fd: a, opaque: "rw" }] },
        { "fdset-id": 7, fds: [{ fd: b }] },
      ]);
      await rejectsWith(client.execute("add-fd", { fd: a }), `File descriptor ${a} is already registered`);
      await rejectsWith(
        client.execute("add-fd", { "fdset-id": -1, fd: fileFds[2] as number }),
        "Parameter 'fdset-id' expects a non-negative value",
      );
      await rejectsWith(client.execute("remove-fd", { "fdset-id": 3 }), "File descriptor named 'fdset-id:3' not found");
      await rejectsWith(
        client.execute("remove-fd", { "fdset-id": 7, fd: a }),
        `File descriptor named 'fdset-id:7, fd:${a}' not found`,
      );
      await client.execute("remove-fd", { "fdset-id": 7, fd: b });
      await client.execute("remove-fd", { "fdset-id": 0 });
      assert.deepEqual(await client.execute("query-fdsets"), []);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test("by default they feed transport/fd-registry.ts, which then owns (and closes) the descriptor", async () => {
    const { server, client } = await start();
    const c = fileFds[2] as number;
    const d = fileFds[3] as number;
    try {
      await client.execute("getfd", { fdname: "qmp-test-fd", fd: c });
      assert.ok(registeredFdNames().includes("qmp-test-fd"));
      await client.execute("closefd", { fdname: "qmp-test-fd" });
      assert.throws(() => fstatSync(c), "closefd closed the descriptor");
      await client.execute("getfd", { fdname: "qmp-test-taken", fd: d });
      assert.equal(takeFd("qmp-test-taken"), d, "fd: migration takes it from the registry");
      // Once taken, the same number may be registered again (it is the taker's now).
      await client.execute("getfd", { fdname: "qmp-test-again", fd: d });
      assert.equal(takeFd("qmp-test-again"), d);
      assert.deepEqual(queryFdSets(), []);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
