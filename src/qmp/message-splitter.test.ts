import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { NESTING_ERROR } from "./json.js";
import { MessageSplitter, type SplitItem } from "./message-splitter.js";

const enc = new TextEncoder();

function drain(s: MessageSplitter): SplitItem[] {
  const out: SplitItem[] = [];
  for (let item = s.next(); item !== undefined; item = s.next()) out.push(item);
  return out;
}

function split(text: string | Uint8Array, options: ConstructorParameters<typeof MessageSplitter>[0] = {}): SplitItem[] {
  const s = new MessageSplitter(options);
  s.push(typeof text === "string" ? enc.encode(text) : text);
  return drain(s);
}

const msg = (text: string): SplitItem => ({ kind: "message", text });
const err = (desc: string): SplitItem => ({ kind: "error", desc });

void suite("MessageSplitter", () => {
  test("splits several objects on one line and one object over several lines", () => {
    assert.deepEqual(split('{"a": 1}{"b": [2, {"c": 3}]}\r\n{"d":\n 4}\n'), [
      msg('{"a": 1}'),
      msg('{"b": [2, {"c": 3}]}'),
      msg('{"d":\n 4}'),
    ]);
  });

  test("ignores braces inside strings, with escapes and single quotes", () => {
    assert.deepEqual(split(`{"a": "}{\\"]"}{'b': '}"'}`), [msg(`{"a": "}{\\"]"}`), msg(`{'b': '}"'}`)]);
  });

  test("gives the same messages whatever the chunking, down to 1-byte chunks", () => {
    const text = '{"execute": "x", "arguments": {"s": "é}"}}\n[1, 2] 42 "str" {"y": 1}\n';
    const whole = split(text);
    const bytes = enc.encode(text);
    for (const size of [1, 2, 3, 7]) {
      const s = new MessageSplitter();
      const out: SplitItem[] = [];
      for (let i = 0; i < bytes.length; i += size) {
        s.push(bytes.subarray(i, i + size));
        out.push(...drain(s));
      }
      assert.deepEqual(out, whole, `chunk size ${size}`);
    }
  });

  test("top-level scalars are items of their own; a number waits for its delimiter", () => {
    const s = new MessageSplitter();
    s.push(enc.encode('"str" [1] 42'));
    assert.deepEqual(drain(s), [msg('"str"'), msg("[1]")]);
    s.push(enc.encode("\n"));
    assert.deepEqual(drain(s), [msg("42")]);
    assert.deepEqual(split("}}} garbage{"), [msg("}}}"), msg("garbage")]);
  });

  test("an oversized message gives one error and the rest of its line is dropped", () => {
    const big = `{"a": "${"x".repeat(200)}"} {"lost": 1}\n{"next": 1}\n`;
    assert.deepEqual(split(big, { maxMessageBytes: 100 }), [
      err("JSON parse error, message exceeds 100 bytes"),
      msg('{"next": 1}'),
    ]);
  });

  test("an endless message without newline is dropped as it arrives: memory stays bounded", () => {
    const s = new MessageSplitter({ maxMessageBytes: 1024 });
    s.push(enc.encode('{"a": "'));
    for (let i = 0; i < 100; i++) {
      s.push(new Uint8Array(10_000).fill(0x78));
      drain(s);
      assert.ok(s.bufferedBytes <= 1024, `buffered ${s.bufferedBytes}`);
    }
    s.push(enc.encode('\n{"ok": 1}'));
    assert.deepEqual(drain(s), [msg('{"ok": 1}')]);
  });

  test("too deep nesting gives QEMU's error and resynchronises at the next line", () => {
    assert.deepEqual(split(`${"[".repeat(100)}\n{"ok": 1}`, { maxDepth: 64 }), [err(NESTING_ERROR), msg('{"ok": 1}')]);
  });

  test("a raw control character inside a string is an error; the line ends there", () => {
    assert.deepEqual(split('{"a": "unterminated\n{"ok": 1}'), [
      err("JSON parse error, control character in string"),
      msg('{"ok": 1}'),
    ]);
  });

  test("invalid UTF-8 inside a message is a parse error", () => {
    const bytes = new Uint8Array([...enc.encode('{"a": "'), 0xff, ...enc.encode('"}')]);
    assert.deepEqual(split(bytes), [err("JSON parse error, invalid UTF-8 sequence")]);
  });
});
