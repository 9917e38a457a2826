import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { RateLimiter } from "./rate-limiter.js";

void suite("RateLimiter", () => {
  test("allows bytesPerSecond / 10 per 100 ms window", () => {
    let now = 0;
    const l = new RateLimiter(1_000_000, () => now);
    assert.equal(l.bytesPerWindow, 100_000);
    assert.equal(l.isExceeded(99_999), false);
    assert.equal(l.isExceeded(100_000), true);
    assert.equal(l.remaining(40_000), 60_000);
    now = 60;
    assert.equal(l.msUntilNextWindow(), 40);
    assert.equal(l.isExceeded(100_000), true);
    now = 100;
    assert.equal(l.isExceeded(100_000), false, "a new window starts at the current byte count");
    assert.equal(l.isExceeded(199_999), false);
    assert.equal(l.isExceeded(200_000), true);
  });

  test("0 and Infinity mean unlimited", () => {
    for (const bps of [0, Number.POSITIVE_INFINITY]) {
      const l = new RateLimiter(bps, () => 0);
      assert.equal(l.isExceeded(1e15), false);
      assert.equal(l.remaining(1e15), Number.POSITIVE_INFINITY);
    }
  });

  test("changing the budget takes effect in the current window", () => {
    const l = new RateLimiter(1000, () => 0);
    assert.equal(l.isExceeded(50), false);
    l.bytesPerSecond = 100;
    assert.equal(l.isExceeded(50), true);
  });

  test("negative or NaN budgets throw RangeError", () => {
    assert.throws(() => new RateLimiter(-1), RangeError);
    assert.throws(() => new RateLimiter(Number.NaN), RangeError);
  });

  test("over a simulated second the budget is honoured within one window", () => {
    let now = 0;
    const l = new RateLimiter(10_000_000, () => now);
    let sent = 0;
    for (now = 0; now < 1000; now += 1) {
      while (!l.isExceeded(sent)) sent += 4096;
    }
    assert.ok(sent >= 10_000_000 - 1_000_000 && sent <= 10_000_000 + 1_000_000 + 4096, `sent ${sent}`);
  });
});
