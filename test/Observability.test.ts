import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as path from "node:path"
import { App, CheckpointFiles, Dfk, Memo, Metrics } from "effect-dfk"
import { platform, tmpDir } from "./util.ts"

interface Recorded {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly parent: string | undefined
  ended: boolean
}

/** A tracer that records every span with its attributes and parent. */
const recordingTracer = () => {
  const spans: Array<Recorded> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const record: Recorded = {
        name,
        attributes,
        parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
        ended: false
      }
      spans.push(record)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `span-${++ids}`,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (endTime, exit) => {
          record.ended = true
          status = { _tag: "Ended", startTime, endTime, exit }
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, layer: Layer.setTracer(tracer) }
}

const counterValue = (app: string, outcome: string) =>
  Metric.value(Metrics.appCalls.pipe(Metric.tagged("outcome", outcome), Metric.tagged("app", app))).pipe(
    Effect.map((s) => s.count)
  )

describe("observability", () => {
  it.scoped("a span per app call, named after the app, with app, hash and outcome", () => {
    const { layer, spans } = recordingTracer()
    return Effect.gen(function*() {
      const root = yield* tmpDir
      const gate = yield* Deferred.make<void>()
      const leaf = App.make(
        { name: "obs_leaf", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.as(Deferred.await(gate), x)
      )
      const parent = App.make(
        { name: "obs_parent", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => leaf(x + 1)
      )
      const kernel = (files: Layer.Layer<CheckpointFiles>) =>
        Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(files), Layer.provide(platform))
      yield* Effect.gen(function*() {
        const a = yield* Effect.fork(parent(1))
        const b = yield* Effect.fork(leaf(2))
        yield* Effect.yieldNow()
        const c = yield* Effect.fork(leaf(2)) // joins b in flight
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(Fiber.zip(Fiber.zip(a, b), c))
        yield* leaf(2) // in-run memo
      }).pipe(Effect.provide(kernel(CheckpointFiles.none)))
      yield* leaf(2).pipe(Effect.provide(kernel(CheckpointFiles.layer([path.join(root, "000", "checkpoint")]))))
      yield* Effect.void

      const calls = spans.filter((s) => s.name.startsWith("obs_"))
      const outcomes = calls.map((s) => `${s.name}:${s.attributes.get("outcome")}`)
      // parent(1) calls leaf(2); b and c are leaf(2) too: one runs, two join it in flight.
      assert.deepStrictEqual(outcomes.slice().sort(), [
        "obs_leaf:checkpoint",
        "obs_leaf:dedup",
        "obs_leaf:dedup",
        "obs_leaf:hit",
        "obs_leaf:miss",
        "obs_parent:miss"
      ])
      // Every outcome (hits too) carries the call's memo key.
      const keys: Record<string, string> = {
        obs_leaf: yield* Memo.key({ name: "obs_leaf", input: 2 }),
        obs_parent: yield* Memo.key({ name: "obs_parent", input: 1 })
      }
      for (const s of calls) {
        assert.strictEqual(s.attributes.get("app"), s.name)
        assert.strictEqual(s.attributes.get("hash"), keys[s.name])
        assert.isTrue(s.ended)
      }
      // The leaf called from the parent's body is a child of the parent's span.
      const nested = calls.find((s) => s.name === "obs_leaf" && s.parent === "obs_parent")
      assert.isDefined(nested)
      const passes = spans.filter((s) => s.name === "dfk.checkpoint")
      assert.isAbove(passes.length, 0)
      assert.isTrue(passes.every((s) => s.ended))
    }).pipe(Effect.provide(layer))
  })

  it.scoped("metrics: app calls by outcome, entries checkpointed, pass duration", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const app = App.make(
        { name: "obs_metrics", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.succeed(x)
      )
      const before = {
        miss: yield* counterValue("obs_metrics", "miss"),
        hit: yield* counterValue("obs_metrics", "hit"),
        entries: (yield* Metric.value(Metrics.entriesCheckpointed)).count,
        passes: (yield* Metric.value(Metrics.checkpointPassDuration)).count
      }
      yield* Effect.gen(function*() {
        yield* app(1)
        yield* app(2)
        yield* app(1)
        yield* Dfk.checkpoint
      }).pipe(Effect.provide(Dfk.layer({ runDir: root, checkpointMode: "manual" }).pipe(
        Layer.provide(CheckpointFiles.none),
        Layer.provide(platform)
      )))
      assert.strictEqual((yield* counterValue("obs_metrics", "miss")) - before.miss, 2)
      assert.strictEqual((yield* counterValue("obs_metrics", "hit")) - before.hit, 1)
      assert.strictEqual((yield* Metric.value(Metrics.entriesCheckpointed)).count - before.entries, 2)
      // The manual pass and the pass at scope close.
      assert.strictEqual((yield* Metric.value(Metrics.checkpointPassDuration)).count - before.passes, 2)
    }))

  it.live("Dfk.progress streams the live counters and ends when the kernel closes", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const gate = yield* Deferred.make<void>()
      const app = App.make(
        { name: "obs_progress", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.as(Deferred.await(gate), x)
      )
      const seen = yield* Effect.gen(function*() {
        const collector = yield* Effect.fork(Stream.runCollect(Dfk.progress({ interval: "1 millis" })))
        const work = yield* Effect.fork(Effect.forEach([1, 2, 3], (x) => app(x), { concurrency: "unbounded" }))
        yield* Effect.sleep("20 millis")
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(work)
        yield* Effect.sleep("20 millis")
        return collector
      }).pipe(Effect.provide(Dfk.layer({ runDir: root }).pipe(Layer.provide(CheckpointFiles.none), Layer.provide(platform))))
      const values = Chunk.toReadonlyArray(yield* Fiber.join(seen))
      assert.deepStrictEqual(values[0], { tasks: 0, hits: 0, misses: 0, fromCheckpoint: 0, running: 0, checkpointed: 0, pending: 0 })
      assert.isTrue(values.some((v) => v.running === 3))
      assert.deepStrictEqual(values.at(-1), { tasks: 3, hits: 0, misses: 3, fromCheckpoint: 0, running: 0, checkpointed: 0, pending: 3 })
    }).pipe(Effect.scoped), { timeout: 20_000 })
})
