/**
 * `maxConcurrency` under a fan-out much wider than it: 20,000 waiting calls are served first
 * come, first served, never more than N bodies at once, and waiters interrupted while they wait
 * take no slot and leave nothing behind; nested apps borrow their parent's slot and are served
 * before the top-level calls still waiting.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { App, Dfk } from "effect-dfk"
import { withKernel } from "./util.ts"

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Waits until the kernel has seen `n` calls. */
const untilTasks = (n: number) =>
  Effect.repeat(Dfk.stats, { until: (s) => s.tasks >= n }).pipe(Effect.asVoid)

describe("maxConcurrency", () => {
  it.scoped("20,000 waiting calls on 4 slots: FIFO service, at most 4 bodies at once, half the waiters interrupted", () =>
    Effect.gen(function*() {
      const CALLS = 20_000
      const SLOTS = 4
      const gate = yield* Deferred.make<void>()
      const started: Array<number> = []
      let running = 0
      let peak = 0
      const square = App.make(
        { name: "fan_square", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            started.push(x)
            peak = Math.max(peak, ++running)
            // The first bodies hold their slots until every call waits; the others end at once.
            return Effect.as(x < SLOTS ? Deferred.await(gate) : Effect.yieldNow(), x * x)
          }).pipe(Effect.ensuring(Effect.sync(() => running--)))
      )
      const { value } = yield* withKernel({ maxConcurrency: SLOTS }, Effect.gen(function*() {
        // One fiber per call, forked in order: each runs to its wait before the next starts.
        const fibers = yield* Effect.forEach(range(0, CALLS), (x) => Effect.fork(square(x)))
        yield* untilTasks(CALLS)
        const whileWaiting = yield* Dfk.detailedStats
        // Half the waiters (every odd input past the first four) leave before they are served.
        const leaving = fibers.filter((_, x) => x >= SLOTS && x % 2 === 1)
        yield* Fiber.interruptAll(leaving)
        yield* Deferred.succeed(gate, undefined)
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        return { whileWaiting, exits, stats: yield* Dfk.detailedStats }
      }))

      assert.strictEqual(value.whileWaiting.running, SLOTS, "only the first calls hold slots while the rest wait")
      assert.strictEqual(value.whileWaiting.tasks, CALLS)
      const served = range(0, CALLS).filter((x) => x < SLOTS || x % 2 === 0)
      assert.deepStrictEqual(started, served, "bodies start in the order of the calls, without the interrupted ones")
      assert.strictEqual(peak, SLOTS)
      for (const x of range(0, CALLS)) {
        const exit = value.exits[x]!
        if (x >= SLOTS && x % 2 === 1) assert.isTrue(Exit.isInterrupted(exit), `call ${x} was interrupted`)
        else assert.deepStrictEqual(exit, Exit.succeed(x * x))
      }
      assert.strictEqual(value.stats.running, 0)
      // Interrupted waiters count as misses (the call was one), but their bodies never ran.
      assert.strictEqual(value.stats.misses, CALLS)
      assert.strictEqual(value.stats.hits, 0)
    }), 60_000)

  it.scoped("interrupted waiters leave no trace: every slot is still there for later calls", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let running = 0
      let peak = 0
      let bodies = 0
      const held = App.make(
        { name: "held", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            bodies++
            peak = Math.max(peak, ++running)
            return Effect.as(Deferred.await(gate), x)
          }).pipe(Effect.ensuring(Effect.sync(() => running--)))
      )
      const { value } = yield* withKernel({ maxConcurrency: 2 }, Effect.gen(function*() {
        // Two calls hold the slots; 1,000 wait and are all interrupted.
        const holders = yield* Effect.forEach([0, 1], (x) => Effect.fork(held(x)))
        const waiters = yield* Effect.forEach(range(2, 1002), (x) => Effect.fork(held(x)))
        yield* untilTasks(1002)
        yield* Fiber.interruptAll(waiters)
        // Then 2 more wait; opening the gate serves them, two at a time.
        const later = yield* Effect.forEach([2000, 2001, 2002], (x) => Effect.fork(held(x)))
        yield* untilTasks(1005)
        yield* Deferred.succeed(gate, undefined)
        return {
          holders: yield* Effect.forEach(holders, Fiber.join),
          later: yield* Effect.forEach(later, Fiber.join),
          stats: yield* Dfk.detailedStats
        }
      }))
      assert.deepStrictEqual(value.holders, [0, 1])
      assert.deepStrictEqual(value.later, [2000, 2001, 2002])
      assert.strictEqual(peak, 2)
      assert.strictEqual(bodies, 5, "interrupted waiters never ran")
      assert.strictEqual(value.stats.running, 0)
    }))

  it.scoped("nested apps borrow their parent's slot and are served before top-level calls that wait", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const child = App.make(
        { name: "child", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => (order.push(`child ${x}`), x + 1))
      )
      const parent = App.make(
        { name: "parent", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.gen(function*() {
            order.push(`parent ${x}`)
            if (x === 0) yield* Deferred.await(gate)
            const [a, b] = yield* Effect.all([child(x * 10), child(x * 10 + 1)], { concurrency: "unbounded" })
            return a + b
          })
      )
      const { value } = yield* withKernel({ maxConcurrency: 1 }, Effect.gen(function*() {
        const fibers = yield* Effect.forEach(range(0, 4), (x) => Effect.fork(parent(x)))
        yield* untilTasks(4)
        yield* Deferred.succeed(gate, undefined)
        return { results: yield* Effect.forEach(fibers, Fiber.join), stats: yield* Dfk.detailedStats }
      }))
      assert.deepStrictEqual(value.results, [3, 23, 43, 63])
      // A parent lends its slot as it calls its children, so the next top-level call starts;
      // from then on the waiting children (and parents taking their slots back) go first, so
      // no more than two parents are ever part-way through.
      assert.deepStrictEqual(order, [
        "parent 0", "parent 1",
        "child 0", "child 1", "child 10", "child 11",
        "parent 2", "parent 3",
        "child 20", "child 21", "child 30", "child 31"
      ])
      assert.strictEqual(value.stats.running, 0)
    }))
})
