/**
 * Slots (src/internal/slots.ts): the execution slots behind `maxConcurrency`. First come,
 * first served within a lane; with `spread` (set once another process claims the same keys
 * of a shared store), a free slot goes to one of the first top-level waiters at random.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { Slots } from "../src/internal/slots.ts"

/** Forks a caller that holds a slot of `slots` until `gate` is done (or waits for one first). */
const hold = (slots: Slots, gate: Deferred.Deferred<void>) =>
  Effect.fork(Effect.uninterruptibleMask((restore) => slots.hold(() => Deferred.await(gate), false, restore)))

/** Forks a caller that, once it holds a slot, runs `f` (`priority`: a nested call's lane). */
const waiter = (slots: Slots, f: () => void, priority = false) =>
  Effect.fork(Effect.uninterruptibleMask((restore) => slots.hold(() => Effect.sync(f), priority, restore)))

/**
 * Starts one holder of the only slot, then `waiters` top-level callers that wait for it, and
 * gives the slot back: the order in which the waiters got it.
 */
const order = (spread: boolean, waiters: number) =>
  Effect.gen(function*() {
    const slots = new Slots(1)
    slots.spread = spread
    const got: Array<number> = []
    const gate = yield* Deferred.make<void>()
    const holder = yield* hold(slots, gate)
    yield* Effect.yieldNow()
    const fibers = []
    for (let i = 0; i < waiters; i++) fibers.push(yield* waiter(slots, () => got.push(i)))
    yield* Effect.yieldNow()
    assert.strictEqual(slots.waiting, waiters)
    yield* Deferred.succeed(gate, undefined)
    yield* Fiber.join(holder)
    for (const f of fibers) yield* Fiber.join(f)
    assert.strictEqual(slots.waiting, 0)
    assert.isTrue(slots.available)
    return got
  })

describe("Slots", () => {
  it.effect("first come, first served", () =>
    Effect.gen(function*() {
      const got = yield* order(false, 50)
      assert.deepStrictEqual(got, Array.from({ length: 50 }, (_, i) => i))
    }))

  it.effect("spread: every waiter gets a slot once, in no fixed order", () =>
    Effect.gen(function*() {
      // 10 tries of 50 waiters: in order every time would be a 1 in (50!)^10 chance.
      let inOrder = 0
      for (let t = 0; t < 10; t++) {
        const got = yield* order(true, 50)
        assert.deepStrictEqual([...got].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i))
        if (got.every((n, i) => n === i)) inOrder++
      }
      assert.strictEqual(inOrder, 0)
    }))

  it.effect("spread picks among the first 256 waiters only: the 257th and later wait for earlier ones", () =>
    Effect.gen(function*() {
      for (let t = 0; t < 3; t++) {
        const got = yield* order(true, 600)
        // The k-th grant (from 0) picks among the first 256 still waiting, which are all below k + 256.
        got.forEach((n, k) => assert.isBelow(n, k + 256))
        // And not only among the first 64: some grant goes further than that.
        assert.isTrue(got.some((n, k) => n >= k + 64))
      }
    }))

  it.effect("spread or not, a nested call (the first lane) is served before top-level waiters", () =>
    Effect.gen(function*() {
      for (const spread of [false, true]) {
        const slots = new Slots(1)
        slots.spread = spread
        const got: Array<string> = []
        const gate = yield* Deferred.make<void>()
        const holder = yield* hold(slots, gate)
        yield* Effect.yieldNow()
        const waiting = []
        for (let i = 0; i < 5; i++) waiting.push(yield* waiter(slots, () => got.push(`top${i}`)))
        waiting.push(yield* waiter(slots, () => got.push("nested"), true))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        for (const f of waiting) yield* Fiber.join(f)
        assert.strictEqual(got[0], "nested")
        assert.strictEqual(got.length, 6)
      }
    }))
})
