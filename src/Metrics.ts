/**
 * The kernel's metrics, as Effect `Metric`s: read them with `Metric.value`, or export them
 * with any Effect metrics exporter (for example `@effect/opentelemetry`).
 *
 * @module
 */
import type * as Duration from "effect/Duration"
import * as Metric from "effect/Metric"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricState from "effect/MetricState"

/**
 * How an app call was served: `hit` (in-run memo), `dedup` (joined an identical call in
 * flight), `checkpoint` (a loaded checkpoint), `remote` (the entry of another process that
 * held the key's claim, DESIGN §7), `miss` (the body ran).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "hit" | "miss" | "dedup" | "checkpoint" | "remote"

/**
 * App calls, tagged `outcome` (see `Outcome`) and `app`.
 *
 * @example Reading the hits of one app
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-dfk"
 *
 * const hits = Metric.value(Metrics.appCalls.pipe(Metric.tagged("outcome", "hit"), Metric.tagged("app", "double")))
 * console.assert(Effect.runSync(hits).count >= 0)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const appCalls: Metric.Metric.Counter<number> = Metric.counter("effect_dfk_app_calls", {
  description: "App calls, by outcome (hit, miss, dedup, checkpoint) and app"
})

/**
 * Checkpoint entries written.
 *
 * @example Reading the number of entries written
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-dfk"
 *
 * console.assert(Effect.runSync(Metric.value(Metrics.entriesCheckpointed)).count >= 0)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const entriesCheckpointed: Metric.Metric.Counter<number> = Metric.counter("effect_dfk_entries_checkpointed", {
  description: "Checkpoint entries written"
})

/**
 * The duration of checkpoint passes (written or failed), in milliseconds.
 *
 * @example Counting checkpoint passes
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-dfk"
 *
 * console.assert(Effect.runSync(Metric.value(Metrics.checkpointPassDuration)).count >= 0)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const checkpointPassDuration: Metric.Metric<
  MetricKeyType.MetricKeyType.Histogram,
  Duration.Duration,
  MetricState.MetricState.Histogram
> = Metric.timerWithBoundaries(
  "effect_dfk_checkpoint_pass_duration",
  [0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000],
  "Checkpoint pass duration in milliseconds"
)
