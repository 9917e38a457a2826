/**
 * The transport layer: byte channels between a migration source and its destination, opened from QEMU-style
 * migration URIs (`tcp:`, `unix:`, `exec:`, `fd:`, `file:`).
 *
 * Everything here speaks the {@link Channel} contract of `channel.ts` and fails only with `MigrationError`
 * (`BAD_URI`, `TRANSPORT`, `TIMEOUT`, `CANCELLED`). This layer knows nothing of the stream format: it must not
 * import from `wire/`, `savevm/`, `migration/` or any layer above; it uses `node:` built-ins only.
 *
 * QEMU: `migration/socket.c`, `exec.c`, `fd.c`, `file.c`, and the `io/channel-*.c` classes under them.
 *
 * @example
 * ```ts
 * import { connect, listen } from "ferry/transport";
 *
 * const listener = await listen("tcp:127.0.0.1:0");
 * const [source, destination] = await Promise.all([connect(listener.uri), listener.accept()]);
 * await source.write(new TextEncoder().encode("QEVM"));
 * await source.end();
 * await destination.read(); // the 4 bytes, then null at end of stream
 * ```
 *
 * @module
 */

export { type ByteSink, type ByteSource, type Channel, isLendingSource, type LendingSource } from "./channel.js";
export { type ConnectOptions, connect, DEFAULT_CONNECT_TIMEOUT_MS } from "./connect.js";
export { DEFAULT_STDERR_LIMIT, ExecChannel, type ExecChannelOptions, spawnExecChannel } from "./exec-channel.js";
export { type FdChannelOptions, openFdChannel } from "./fd-channel.js";
export {
  addFdToSet,
  type FdSetInfo,
  type FdSetMember,
  findFdInSet,
  queryFdSets,
  registeredFdNames,
  registerFd,
  releaseFd,
  removeFdFromSet,
  takeFd,
} from "./fd-registry.js";
export {
  DEFAULT_FILE_BLOCK_SIZE,
  FileChannel,
  type FileChannelInit,
  type FileChannelOptions,
  openFileChannel,
} from "./file-channel.js";
export { type AcceptOptions, type Listener, type ListenerAddress, type ListenOptions, listen } from "./listen.js";
export { type ChannelPairOptions, createChannelPair, DEFAULT_PAIR_HIGH_WATER_MARK } from "./memory-channel.js";
export { DEFAULT_RING_SLOT_BYTES, MIN_RING_SLOTS, ReceiveRing, type RingConsumer } from "./receive-ring.js";
export {
  adoptAcceptedSocket,
  adoptSpawnedPipe,
  DEFAULT_SOCKET_HIGH_WATER_MARK,
  ringForHighWaterMark,
  SocketChannel,
  type SocketChannelOptions,
} from "./socket-channel.js";
export {
  type ExecUri,
  FDSET_PREFIX,
  type FdUri,
  type FileUri,
  formatUri,
  MAX_UNIX_PATH_BYTES,
  type MigrationUri,
  parseUri,
  type TcpUri,
  type UnixUri,
  type UriSide,
} from "./uri.js";
