/**
 * `Metrics`: the kernel's counters and histogram, read with `Metric.value`.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk, Metrics } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { platform, tmpDir } from "./util.ts"

const counterValue = (app: string, outcome: string) =>
  Metric.value(Metrics.appCalls.pipe(Metric.tagged("outcome", outcome), Metric.tagged("app", app))).pipe(
    Effect.map((s) => s.count)
  )

describe("observability", () => {
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
      }).pipe(Effect.provide(
        Dfk.layer({ runDir: root, checkpointMode: "manual" }).pipe(
          Layer.provide(CheckpointFiles.none),
          Layer.provide(platform)
        )
      ))
      assert.strictEqual((yield* counterValue("obs_metrics", "miss")) - before.miss, 2)
      assert.strictEqual((yield* counterValue("obs_metrics", "hit")) - before.hit, 1)
      assert.strictEqual((yield* Metric.value(Metrics.entriesCheckpointed)).count - before.entries, 2)
      // The manual pass and the pass at scope close.
      assert.strictEqual((yield* Metric.value(Metrics.checkpointPassDuration)).count - before.passes, 2)
    }))
})
