/**
 * OneShot (src/internal/oneShot.ts): the set-once value the SQL store's claims and waits
 * await, in place of Effect's `Deferred`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { OneShot } from "../src/internal/oneShot.ts"

describe("OneShot", () => {
  it.effect("set before or after it is awaited, every waiter gets the value; a second done is ignored", () =>
    Effect.gen(function*() {
      const early = new OneShot<number>()
      early.done(Exit.succeed(1))
      early.done(Exit.succeed(2))
      assert.strictEqual(yield* early.await, 1)
      const late = new OneShot<number, string>()
      const a = yield* Effect.fork(late.await)
      const b = yield* Effect.fork(late.await)
      yield* Effect.yieldNow()
      assert.isFalse(late.isDone)
      late.done(Exit.fail("no"))
      late.done(Exit.succeed(3))
      assert.deepStrictEqual(yield* Fiber.await(a), Exit.fail("no"))
      assert.deepStrictEqual(yield* Fiber.await(b), Exit.fail("no"))
    }))

  it.effect("an interrupted waiter leaves; the others still get the value", () =>
    Effect.gen(function*() {
      const shot = new OneShot<string>()
      const gone = yield* Effect.fork(shot.await)
      const stays = yield* Effect.fork(shot.await)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(gone)
      shot.done(Exit.succeed("v"))
      assert.strictEqual(yield* Fiber.join(stays), "v")
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(gone)))
    }))
})
