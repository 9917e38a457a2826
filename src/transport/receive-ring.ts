/**
 * The receive ring of a socket channel: fixed slots that the kernel reads into (Node's `onread` with a buffer
 * generator), lent to the reader and reused once given back. No buffer is allocated per read, and the slots may lie
 * inside a guest's wasm memory, so the RAM loader moves each page with one wasm `memory.copy`
 * (node-perf-probes recommendation 5).
 *
 * QEMU: the fixed `QEMUFile` buffer a destination reads into (`qemu_fill_buffer`).
 *
 * @module
 */

/**
 * Default slot size: 256 KiB, for the ring a channel allocates for itself (a loopback read fills most of it under
 * load). `SocketChannel.receiveInto` uses 1 MiB slots in a machine's larger I/O memory.
 */
export const DEFAULT_RING_SLOT_BYTES = 256 * 1024;

/** Fewest slots a ring may have: one being read into, one lent to the reader's current record, and two more. */
export const MIN_RING_SLOTS = 4;

/** What a ring calls when it has bytes for its channel, or when it may read again. */
export interface RingConsumer {
  /** `chunk` (a view of one slot) arrived and is lent to the consumer until {@link ReceiveRing.release}. */
  onLent(chunk: Uint8Array): void;
  /** The ring had stopped reading because its next slot was still lent; that slot is free now. */
  onSlotFree(): void;
}

/**
 * A ring of receive slots.
 *
 * The socket owns the "armed" slot (the buffer its next read goes into). After each read the ring lends the filled
 * part to the consumer and arms the next slot; if that slot is still lent, the read callback returns `false`, which
 * stops the socket until the consumer gives the slot back ({@link RingConsumer.onSlotFree}). The slots can be moved
 * to other memory at any time ({@link ReceiveRing.useMemory}): slots already armed or lent finish their turn first.
 */
export class ReceiveRing {
  #slots: Uint8Array[];
  #next: number;
  #armed: Uint8Array;
  /** Lent chunk → the slot it lies in. */
  readonly #lent = new Map<Uint8Array, Uint8Array>();
  /** Slots with a lent chunk. */
  readonly #busy = new Set<Uint8Array>();
  #consumer: RingConsumer | undefined;
  #stalled = false;

  /**
   * @param memory Where the slots lie: a byte range split into equal slots of `slotBytes` (the tail that does not
   *   fill a slot is unused). Default: a private 1 MiB buffer.
   * @param slotBytes Slot size; default {@link DEFAULT_RING_SLOT_BYTES}.
   * @throws RangeError when `memory` holds fewer than {@link MIN_RING_SLOTS} slots.
   */
  constructor(memory?: Uint8Array, slotBytes = DEFAULT_RING_SLOT_BYTES) {
    this.#slots = ReceiveRing.#split(memory ?? new Uint8Array(MIN_RING_SLOTS * slotBytes), slotBytes);
    this.#armed = this.#slots[0] as Uint8Array;
    this.#next = 1;
  }

  static #split(memory: Uint8Array, slotBytes: number): Uint8Array[] {
    if (!(Number.isSafeInteger(slotBytes) && slotBytes >= 4096)) {
      throw new RangeError(`Cannot make a receive ring: slot size ${slotBytes} is not an integer ≥ 4096`);
    }
    const count = Math.floor(memory.byteLength / slotBytes);
    if (count < MIN_RING_SLOTS) {
      throw new RangeError(
        `Cannot make a receive ring: ${memory.byteLength} bytes hold ${count} slots of ${slotBytes}, fewer than ${MIN_RING_SLOTS}`,
      );
    }
    // Plain Uint8Array views (not Buffer): the reader's views of them then behave like standard typed arrays.
    return Array.from(
      { length: count },
      (_, i) => new Uint8Array(memory.buffer, memory.byteOffset + i * slotBytes, slotBytes),
    );
  }

  /** Most chunks lent at once: the slot count, less the armed one. */
  get lendLimit(): number {
    return this.#slots.length - 1;
  }

  /** Bytes of all slots. */
  get byteLength(): number {
    return this.#slots.length * (this.#slots[0] as Uint8Array).byteLength;
  }

  /** Whether the ring stopped reading until a slot comes back. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /**
   * Moves the ring into `memory` (e.g. a region of the guest's wasm memory after its RAM). Slots of the old memory
   * that are armed or lent finish their turn; later reads go to the new slots.
   *
   * @throws RangeError as the constructor.
   */
  useMemory(memory: Uint8Array, slotBytes = DEFAULT_RING_SLOT_BYTES): void {
    this.#slots = ReceiveRing.#split(memory, slotBytes);
    this.#next = 0;
  }

  /** Connects the consumer; called once by the channel. */
  attach(consumer: RingConsumer): void {
    this.#consumer = consumer;
  }

  /**
   * The `onread` option for `net.Socket` / `net.connect()`: Node reads into `buffer()` and then calls `callback`.
   * Node 20 calls `buffer()` once when the handle is set up and again after every callback, using what it returns
   * as the next read's target.
   */
  readonly onread = {
    buffer: (): Uint8Array => this.#armed,
    callback: (n: number, buf: Uint8Array): boolean => this.#onRead(n, buf),
  };

  #onRead(n: number, buf: Uint8Array): boolean {
    const slot = this.#armed;
    // Node passes back the buffer it read into, i.e. the slot armed before this read.
    const chunk = buf === slot ? slot.subarray(0, n) : new Uint8Array(buf.buffer, buf.byteOffset, n);
    this.#lent.set(chunk, slot);
    this.#busy.add(slot);
    const slots = this.#slots;
    const next = slots[this.#next] as Uint8Array;
    this.#next = this.#next + 1 === slots.length ? 0 : this.#next + 1;
    this.#armed = next;
    this.#stalled = this.#busy.has(next);
    this.#consumer?.onLent(chunk);
    // false stops the socket (Node: "implicitly pause()"); release() of the armed slot starts it again.
    return !this.#stalled;
  }

  /**
   * Gives a lent chunk back; its slot may be read into again.
   *
   * @throws Error when `chunk` is not lent (a caller bug: a double release, or a chunk of another ring).
   */
  release(chunk: Uint8Array): void {
    const slot = this.#lent.get(chunk);
    if (slot === undefined)
      throw new Error("Cannot release a chunk the receive ring did not lend (or released it twice)");
    this.#lent.delete(chunk);
    this.#busy.delete(slot);
    if (this.#stalled && slot === this.#armed) {
      this.#stalled = false;
      this.#consumer?.onSlotFree();
    }
  }

  /** Forgets every lent chunk (the channel is closing; nobody reads again). */
  releaseAll(): void {
    this.#lent.clear();
    this.#busy.clear();
    this.#stalled = false;
  }
}
