/** The 16550A UART on its own: registers, interrupt identification, FIFO, loopback and state. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { Uart16550 } from "./uart16550.js";

function uart(input: number[] = []): { u: Uart16550; out: number[]; input: number[] } {
  const out: number[] = [];
  const u = new Uart16550((b) => out.push(b));
  u.setSource({ take: () => (input.length > 0 ? (input.shift() as number) : -1) });
  return { u, out, input };
}

suite("Uart16550", () => {
  test("reset values match QEMU's serial_reset", () => {
    const { u } = uart();
    assert.deepEqual(
      [u.read(1, 1), u.read(2, 1), u.read(3, 1), u.read(4, 1), u.read(5, 1), u.read(6, 1)],
      [0, 0x01, 0, 0x08, 0x60, 0xb0],
    );
    assert.equal(u.getState().divider, 0x0c);
  });

  test("THR-empty interrupt: raised by IER.THRI, cleared by reading IIR, raised again by a transmit", () => {
    const { u, out } = uart();
    u.write(1, 1, 0x02);
    assert.equal(u.irq, 1);
    assert.equal(u.read(2, 1), 0x02);
    assert.equal(u.irq, 0, "reading IIR acknowledges THRI");
    assert.equal(u.read(2, 1), 0x01);
    u.write(0, 1, 0x41);
    assert.deepEqual(out, [0x41]);
    assert.equal(u.irq, 1);
    assert.equal(u.getState().thrIpending, 1);
  });

  test("received data interrupt and the FIFO trigger level", () => {
    const { u, input } = uart();
    u.write(2, 1, 0x41); // FIFO on, trigger level 4
    u.write(1, 1, 0x01);
    input.push(1, 2, 3);
    u.pull();
    assert.equal(u.irq, 0, "3 bytes are below the trigger level");
    input.push(4);
    u.pull();
    assert.equal(u.irq, 1);
    assert.equal(u.read(2, 1), 0xc4);
    assert.deepEqual([u.read(0, 1), u.read(0, 1), u.read(0, 1), u.read(0, 1)], [1, 2, 3, 4]);
    assert.equal(u.read(5, 1) & 1, 0);
    assert.equal(u.irq, 0);
  });

  test("the RX FIFO holds 16 bytes; the rest wait in the source", () => {
    const { u, input } = uart();
    u.write(2, 1, 0x01);
    for (let i = 0; i < 20; i++) input.push(i);
    u.pull();
    assert.equal(u.getState().rxCount, 16);
    assert.equal(input.length, 4);
    assert.equal(u.read(0, 1), 0);
    assert.equal(input.length, 3, "a read makes room and pulls the next byte");
    const s = u.getState();
    assert.deepEqual([...s.rxFifo], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  });

  test("loopback: transmitted bytes come back; overrun sets and reading LSR clears OE", () => {
    const { u, out } = uart();
    u.write(4, 1, 0x10);
    u.write(0, 1, 0x55);
    u.write(0, 1, 0x66);
    assert.deepEqual(out, []);
    assert.equal(u.read(5, 1) & 0x03, 0x03, "DR and OE");
    assert.equal(u.read(5, 1) & 0x02, 0, "OE clears on read");
    assert.equal(u.read(0, 1), 0x66);
    assert.equal(u.read(6, 1), 0, "loopback MSR reflects MCR");
  });

  test("DLAB selects the divisor latches", () => {
    const { u } = uart();
    u.write(3, 1, 0x83);
    u.write(0, 1, 0x01);
    u.write(1, 1, 0x02);
    assert.equal(u.read(0, 1), 0x01);
    assert.equal(u.read(1, 1), 0x02);
    u.write(3, 1, 0x03);
    assert.equal(u.getState().divider, 0x0201);
    assert.equal(u.read(1, 1), 0, "IER untouched");
  });

  test("getState/setState round-trips a mid-reception state into a fresh UART", () => {
    const a = uart([7, 8, 9]);
    a.u.write(2, 1, 0x01);
    a.u.write(1, 1, 0x05);
    a.input.push(7, 8, 9);
    a.u.pull();
    a.u.read(0, 1);
    const s = a.u.getState();
    const b = uart();
    b.u.setState(s);
    assert.deepEqual(b.u.getState(), s);
    assert.deepEqual([b.u.read(0, 1), b.u.read(0, 1)], [9, 7], "FIFO order survives (8 was read before the save)");
  });
});
