import assert from "node:assert/strict";
import { fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { openFdChannel } from "./fd-channel.js";
import {
  addFdToSet,
  findFdInSet,
  queryFdSets,
  registeredFdNames,
  registerFd,
  releaseFd,
  removeFdFromSet,
  takeFd,
} from "./fd-registry.js";

const dir = mkdtempSync(join(tmpdir(), "ferry-fd-registry-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

void suite("fd registry", () => {
  test("registerFd() validates names and descriptors", () => {
    assert.throws(() => registerFd("", 3), TypeError);
    assert.throws(() => registerFd("3abc", 3), TypeError);
    assert.throws(() => registerFd("ok", -1), RangeError);
    assert.throws(() => registerFd("ok", 1.5), RangeError);
  });

  test("registerFd() replaces and closes an older descriptor; takeFd() hands it over once", () => {
    const first = openSync(join(dir, "a"), "w");
    const second = openSync(join(dir, "b"), "w");
    registerFd("unit-replace", first);
    registerFd("unit-replace", second);
    assert.equal(isOpen(first), false);
    assert.ok(registeredFdNames().includes("unit-replace"));
    assert.equal(takeFd("unit-replace"), second);
    assert.equal(takeFd("unit-replace"), undefined);
    assert.equal(isOpen(second), true);
    registerFd("unit-release", second);
    assert.equal(releaseFd("unit-release"), true);
    assert.equal(isOpen(second), false);
    assert.equal(releaseFd("unit-release"), false);
  });

  test("fd sets pick a member by access mode, list and remove members", () => {
    const ro = openSync(join(dir, "set"), "w+");
    const wo = openSync(join(dir, "set"), "a");
    const { fdsetId } = addFdToSet(ro, { opaque: "reader" });
    assert.deepEqual(addFdToSet(wo, { fdsetId }), { fdsetId, fd: wo });
    assert.equal(findFdInSet(fdsetId, "write"), ro); // w+ is read-write: it fits both
    assert.equal(findFdInSet(fdsetId, "read"), ro);
    const listed = queryFdSets().find((set) => set.fdsetId === fdsetId);
    assert.deepEqual(listed?.fds, [{ fd: ro, opaque: "reader" }, { fd: wo }]);
    assert.equal(removeFdFromSet(fdsetId, ro), true);
    assert.equal(isOpen(ro), false);
    assert.equal(findFdInSet(fdsetId, "read"), undefined);
    assert.equal(findFdInSet(fdsetId, "write"), wo);
    assert.equal(removeFdFromSet(fdsetId), true);
    assert.equal(findFdInSet(fdsetId, "write"), undefined);
    assert.equal(removeFdFromSet(fdsetId), false);
  });
});

void suite("openFdChannel()", () => {
  test("openFdChannel() fails with TRANSPORT for an unknown name or a closed descriptor", () => {
    assert.throws(
      () => openFdChannel("unit-missing", "connect"),
      (e: unknown) => isMigrationError(e, "TRANSPORT"),
    );
    const fd = openSync(join(dir, "closed"), "w");
    registerFd("unit-closed", fd);
    assert.equal(releaseFd("unit-closed"), true);
    assert.throws(
      () => openFdChannel(String(fd), "listen"),
      (e: unknown) => {
        assert.ok(isMigrationError(e, "TRANSPORT"));
        assert.match(e.message, /EBADF/);
        return true;
      },
    );
  });

  test("openFdChannel() wraps a regular file as a one-way file channel", async () => {
    const fd = openSync(join(dir, "regular"), "w");
    registerFd("unit-regular", fd);
    const channel = openFdChannel("unit-regular", "connect");
    assert.equal(channel.canRead, false);
    assert.equal(channel.canWrite, true);
    await channel.write(Buffer.from("x"));
    await channel.close();
    assert.equal(isOpen(fd), false);
  });
});
