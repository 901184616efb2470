/**
 * The DataFlowKernel: the service every app call goes through. It memoizes results,
 * shares in-flight calls, writes checkpoints and loads them to resume.
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { App } from "./App.ts"
import type { Durability } from "./CheckpointStore.ts"
import type { AppCacheError, BadCheckpoint, CheckpointError, DfkError } from "./errors.ts"
import type { ExplainOptions, Explanation } from "./Explanation.ts"
import type { AppSpec } from "./internal/appSpec.ts"
import * as kernel from "./internal/kernel.ts"
import { specOf } from "./internal/specs.ts"

/**
 * When checkpoints are written (Parsl's `checkpoint_mode`):
 * - `task_exit`: each result as its app completes; the caller sees the result only once its
 *   entry is written.
 * - `periodic`: pending results every `checkpointPeriod`.
 * - `dfk_exit`: pending results when the kernel's scope closes.
 * - `manual`: pending results on `Dfk.checkpoint`.
 *
 * Every mode also writes what is pending when the scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckpointMode = "task_exit" | "periodic" | "dfk_exit" | "manual"

/**
 * The kernel's configuration (Parsl's `Config` and `BasicMemoizer` options).
 *
 * @since 0.1.0
 * @category models
 */
export interface DfkConfig {
  /** Where run directories are made; default `"runinfo"`. */
  readonly runDir?: string | undefined
  /** Memoize apps with `cache: true`; default `true`. With `false` nothing is memoized or checkpointed. */
  readonly memoize?: boolean | undefined
  /** When to write checkpoints; default none (checkpointing off unless `Dfk.checkpoint` is called). */
  readonly checkpointMode?: CheckpointMode | undefined
  /** The period of the `periodic` mode: any `Duration` input or `"HH:MM:SS"`; no default. */
  readonly checkpointPeriod?: Duration.DurationInput | string | undefined
  /** How many times a failed app body is run again; default `0`. */
  readonly retries?: number | undefined
  /** At most this many app bodies run at once; default unlimited. Memo hits take no slot. */
  readonly maxConcurrency?: number | undefined
  /**
   * `"fsync"` syncs each checkpoint pass to stable storage before it counts as written (it
   * then survives a power loss, not only a process crash); default `"none"`.
   */
  readonly durability?: Durability | undefined
  /**
   * Run the apps again even when a stored entry answers the call: `true` for every app, or
   * the names of some. Entries written before this kernel started are not served; the new
   * entry is written (in the checkpoint mode's way) and wins from then on (the last entry
   * wins). Within the run the memo and in-flight dedup work as ever: a second call gets the
   * fresh value. Default `false`.
   */
  readonly refresh?: boolean | ReadonlyArray<string> | undefined
  /**
   * Logs, at info level and in one line, why each call of an app that has stored entries
   * missed: the closest stored entry and what differs (`Dfk.explain`'s answer). Default
   * `false`, which costs nothing; `true` reads the stored entries once, at the first miss.
   */
  readonly explainMisses?: boolean | undefined
}

/**
 * Counts of this kernel's app calls and checkpoint entries (DESIGN's five fields).
 *
 * @since 0.1.0
 * @category models
 */
export interface DfkStats {
  /** App calls. */
  readonly tasks: number
  /** Calls served without running the body: in-run memo, loaded checkpoint, or joining an in-flight call. */
  readonly hits: number
  /** Calls that ran the body (`cache: false` ones included). */
  readonly misses: number
  /** Entries written by this run. */
  readonly checkpointed: number
  /** Entries not yet written. */
  readonly pending: number
}

/**
 * `DfkStats` and two live counters, for progress displays.
 *
 * @since 0.1.0
 * @category models
 */
export interface DfkDetailedStats extends DfkStats {
  /** Hits served from a loaded checkpoint (a part of `hits`). */
  readonly fromCheckpoint: number
  /** App bodies running now. */
  readonly running: number
}

/**
 * A kernel's configuration once validated, with every default filled in.
 *
 * @since 0.2.0
 * @category models
 */
export interface ResolvedDfkConfig {
  /** Where run directories go. */
  readonly runDir: string
  /** Whether memoization is on. */
  readonly memoize: boolean
  /** When checkpoints are written; `undefined`: checkpointing off. */
  readonly checkpointMode: CheckpointMode | undefined
  /** The period of `periodic` passes, when one is set. */
  readonly checkpointPeriod: Duration.Duration | undefined
  /** How many more times a failed body runs. */
  readonly retries: number
  /** At most this many bodies at once; `undefined`: no limit. */
  readonly maxConcurrency: number | undefined
  /** How far a checkpoint write goes before it counts as done. */
  readonly durability: Durability
  /** Which apps run again even when a stored entry answers the call: all (`true`), some (their names) or none. */
  readonly refresh: boolean | ReadonlyArray<string>
  /** Whether misses are explained in the log. */
  readonly explainMisses: boolean
}

/**
 * The kernel's interface.
 *
 * @since 0.1.0
 * @category models
 */
export interface DfkService {
  /** This run's directory, e.g. `runinfo/003`. */
  readonly runDir: string
  /** This run's checkpoint directory, e.g. `runinfo/003/checkpoint`. */
  readonly checkpointDir: string
  /** The validated configuration. */
  readonly config: ResolvedDfkConfig
  /** Writes every pending entry and returns the checkpoint directory. */
  readonly checkpoint: Effect.Effect<string, CheckpointError>
  /** A snapshot of the counters. */
  readonly stats: Effect.Effect<DfkStats>
  /** A snapshot of the counters, with `fromCheckpoint` and `running`. */
  readonly detailedStats: Effect.Effect<DfkDetailedStats>
  /** The counters now, then after each change (at most once per `interval`), until the kernel closes. */
  readonly progress: (interval: Duration.Duration) => Stream.Stream<DfkDetailedStats>
}

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const DfkBase: Context.TagClass<Dfk, "effect-dfk/Dfk", DfkService> = Context.Tag("effect-dfk/Dfk")<Dfk, DfkService>()

/**
 * The DataFlowKernel service.
 *
 * @example Running a workflow under a kernel
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { App, Dfk } from "effect-dfk"
 *
 * const inc = App.make(
 *   { name: "inc", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) => Effect.succeed(x + 1)
 * )
 *
 * const program = Effect.gen(function* () {
 *   yield* inc(1)
 *   yield* inc(1) // served from the memo
 *   return yield* Dfk.stats
 * }).pipe(
 *   Effect.provide(Dfk.layer({ runDir: "/tmp/effect-dfk-doc-dfk" })),
 *   Effect.provide(NodeContext.layer)
 * )
 * const stats = await Effect.runPromise(program)
 * console.assert(stats.hits === 1 && stats.misses === 1)
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Dfk extends DfkBase {
  /**
   * A kernel for the layer's scope. It loads the checkpoints named by `CheckpointFiles`
   * (or, with a checkpoint mode and no `CheckpointFiles`, every checkpoint under
   * `runDir`), makes this run's directory, and on close writes what is pending.
   *
   * @example Resuming from the checkpoints of earlier runs
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * let bodyRuns = 0
   * const cube = App.make(
   *   { name: "cube", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) =>
   *     Effect.sync(() => {
   *       bodyRuns++
   *       return x ** 3
   *     })
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-layer-" })
   *   // A checkpoint mode and no CheckpointFiles: each run loads every checkpoint under runDir.
   *   const run = cube(3).pipe(Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })))
   *   console.assert((yield* run) === 27)
   *   console.assert((yield* run) === 27)
   *   console.assert(bodyRuns === 1) // the second run was served from the first one's checkpoint
   *   console.assert((yield* fs.readDirectory(runDir)).sort().join() === "000,001")
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static layer(config: DfkConfig = {}): Layer.Layer<Dfk, DfkError, FileSystem.FileSystem | Path.Path> {
    return Layer.scoped(Dfk, kernel.make(config))
  }

  /**
   * Writes every entry pending since the last checkpoint and returns this run's
   * checkpoint directory. Works in every mode.
   *
   * @example Writing a checkpoint when you choose
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import * as path from "node:path"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x * x)
   * )
   *
   * const run = (runDir: string) =>
   *   Effect.gen(function* () {
   *     yield* square(4)
   *     const before = yield* Dfk.stats
   *     const dir = yield* Dfk.checkpoint
   *     const after = yield* Dfk.stats
   *     return { before, dir, after }
   *   }).pipe(Effect.provide(Dfk.layer({ runDir, checkpointMode: "manual" })))
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-checkpoint-" })
   *   const { before, dir, after } = yield* run(runDir)
   *   console.assert(before.pending === 1 && after.pending === 0 && after.checkpointed === 1)
   *   console.assert(dir === path.join(runDir, "000", "checkpoint"))
   *   const entry = JSON.parse(yield* fs.readFileString(path.join(dir, "tasks.jsonl")))
   *   console.assert(entry.app === "square" && entry.input === 4 && entry.result === 16)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category checkpointing
   */
  static readonly checkpoint: Effect.Effect<string, CheckpointError, Dfk> = Effect.flatMap(
    Dfk,
    (dfk) => dfk.checkpoint
  )

  /**
   * This run's directory, e.g. `runinfo/003`.
   *
   * @example Each run gets a directory of its own
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import * as path from "node:path"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect } from "effect"
   * import { Dfk } from "effect-dfk"
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-rundir-" })
   *   const run = Dfk.runDir.pipe(Effect.provide(Dfk.layer({ runDir })))
   *
   *   const first = yield* run
   *   const second = yield* run
   *   console.assert(first === path.join(runDir, "000") && second === path.join(runDir, "001"))
   *   console.assert((yield* fs.stat(second)).type === "Directory")
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category getters
   */
  static readonly runDir: Effect.Effect<string, never, Dfk> = Effect.map(Dfk, (dfk) => dfk.runDir)

  /**
   * A snapshot of the kernel's counters.
   *
   * @example Counting hits, misses and pending entries
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import * as path from "node:path"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * const inc = App.make(
   *   { name: "inc", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x + 1)
   * )
   *
   * const run = (runDir: string) =>
   *   Effect.gen(function* () {
   *     yield* inc(1)
   *     yield* inc(1) // a hit
   *     yield* inc(2)
   *     return yield* Dfk.stats
   *   }).pipe(Effect.provide(Dfk.layer({ runDir, checkpointMode: "dfk_exit" })))
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-stats-" })
   *   const stats = yield* run(runDir)
   *   console.assert(stats.tasks === 3 && stats.hits === 1 && stats.misses === 2)
   *   // dfk_exit: nothing written yet while the kernel runs; both entries at the close.
   *   console.assert(stats.checkpointed === 0 && stats.pending === 2)
   *   const file = path.join(runDir, "000", "checkpoint", "tasks.jsonl")
   *   console.assert((yield* fs.readFileString(file)).trim().split("\n").length === 2)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category getters
   */
  static readonly stats: Effect.Effect<DfkStats, never, Dfk> = Effect.flatMap(Dfk, (dfk) => dfk.stats)

  /**
   * The counters of `Dfk.stats` and two more: `fromCheckpoint` (hits served from a loaded
   * checkpoint) and `running` (app bodies running now).
   *
   * @example Counting results served from a checkpoint, and running bodies
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x * x)
   * )
   * // An app whose body reports how many app bodies are running, itself included.
   * const running = App.make(
   *   { name: "running", input: Schema.Null, output: Schema.Number },
   *   () => Effect.map(Dfk.detailedStats, (stats) => stats.running)
   * )
   * const secondRun = Effect.gen(function* () {
   *   yield* square(5) // served from the first run's checkpoint
   *   const inBody = yield* running(null)
   *   return { inBody, stats: yield* Dfk.detailedStats }
   * })
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-detailed-" })
   *   const kernel = Dfk.layer({ runDir, checkpointMode: "task_exit" })
   *
   *   yield* square(5).pipe(Effect.provide(kernel))
   *   const { inBody, stats } = yield* secondRun.pipe(Effect.provide(kernel))
   *   console.assert(inBody === 1 && stats.running === 0)
   *   console.assert(stats.fromCheckpoint === 1 && stats.hits === 1 && stats.misses === 1)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category getters
   */
  static readonly detailedStats: Effect.Effect<DfkDetailedStats, never, Dfk> = Effect.flatMap(
    Dfk,
    (dfk) => dfk.detailedStats
  )

  /**
   * The kernel's live counters as a stream: the current value at once, then a new value
   * after each change, at most once per `interval` (default 100 ms). The stream ends when
   * the kernel closes; a progress display forks it and renders each value.
   *
   * @example A progress display
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Fiber, Schema, Stream } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * const inc = App.make(
   *   { name: "inc", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x + 1)
   * )
   *
   * const shown: Array<string> = []
   * const run = (runDir: string) =>
   *   Effect.gen(function* () {
   *     // Forked: it renders each value, and ends when the kernel closes.
   *     const display = yield* Dfk.progress({ interval: "1 millis" }).pipe(
   *       Stream.runForEach((s) => Effect.sync(() => shown.push(`${s.tasks} tasks, ${s.hits} hits, ${s.running} running`))),
   *       Effect.forkDaemon
   *     )
   *     yield* Effect.forEach([1, 2, 1], inc)
   *     return display
   *   }).pipe(Effect.provide(Dfk.layer({ runDir })))
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-progress-" })
   *   const display = yield* run(runDir)
   *   yield* Fiber.join(display) // the stream ended with the kernel
   *   console.assert(shown.length >= 1 && shown[shown.length - 1] === "3 tasks, 1 hits, 0 running")
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category getters
   */
  static progress(options?: ProgressOptions): Stream.Stream<DfkDetailedStats, never, Dfk> {
    const interval = Duration.decode(options?.interval ?? "100 millis")
    return Stream.unwrap(Effect.map(Dfk, (dfk) => dfk.progress(interval)))
  }

  /**
   * Explains what a call of `app` with `input` would do now: its key, and either a hit (the
   * checkpoint whose entry answers it, or `null` when this run computed it) or a miss with the
   * closest stored entries of the app and exactly what differs (`Explanation.Difference`:
   * the version, input keys missing, extra or changed with both values, a tombstone, a
   * damaged entry, a result that no longer decodes). It reads the stored entries the kernel
   * can see (the checkpoints it resumes from, or looks in, and its own) each time it runs;
   * nothing runs, nothing is written. For an app with `cache: true`.
   *
   * @example Why a call misses
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * const scale = App.make(
   *   { name: "scale", input: Schema.Struct({ x: Schema.Number, factor: Schema.Number }), output: Schema.Number, cache: true },
   *   ({ factor, x }) => Effect.succeed(x * factor)
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-explain-" })
   *   const kernel = Dfk.layer({ runDir, checkpointMode: "task_exit" })
   *   yield* scale({ x: 2, factor: 10 }).pipe(Effect.provide(kernel))
   *
   *   const [hit, miss] = yield* Effect.all([
   *     Dfk.explain(scale, { x: 2, factor: 10 }),
   *     Dfk.explain(scale, { x: 2, factor: 3 })
   *   ]).pipe(Effect.provide(kernel))
   *   console.assert(hit._tag === "Hit" && hit.checkpoint?.endsWith("000/checkpoint"))
   *   console.assert(miss._tag === "Miss")
   *   if (miss._tag === "Miss") {
   *     const [difference] = miss.closest[0]!.differences
   *     console.assert(difference?._tag === "Changed" && difference.path === "input.factor")
   *   }
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.2.0
   * @category explaining
   */
  static explain<I, A, E, R>(
    app: App<I, A, E, R>,
    input: I,
    options?: ExplainOptions
  ): Effect.Effect<Explanation, AppCacheError | BadCheckpoint, Dfk | R> {
    return withSpec("Dfk.explain", app, (k, spec) => k.explain(spec, input, options))
  }

  /**
   * Invalidates the key of a call of `app` with `input`: a tombstone (DESIGN §4) is written
   * to this run's checkpoint at once (with whatever else is pending, which it must follow),
   * so later runs that load it miss the key, and in this run the memo forgets the key and a
   * loaded entry of it is dropped, so the next call runs the body. A call of the key in
   * flight is not stopped. Returns the key. `dfk invalidate` does the same from the shell.
   *
   * @example Running a call again
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, Dfk } from "effect-dfk"
   *
   * let bodyRuns = 0
   * const fetchPrice = App.make(
   *   { name: "fetch_price", input: Schema.String, output: Schema.Number, cache: true },
   *   () => Effect.sync(() => ++bodyRuns)
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-invalidate-" })
   *   const kernel = Dfk.layer({ runDir, checkpointMode: "task_exit" })
   *   yield* fetchPrice("ACME").pipe(Effect.provide(kernel))
   *   yield* Effect.gen(function* () {
   *     yield* fetchPrice("ACME") // served from the first run's checkpoint
   *     yield* Dfk.invalidate(fetchPrice, "ACME")
   *     yield* fetchPrice("ACME") // runs again
   *   }).pipe(Effect.provide(kernel))
   *   console.assert(bodyRuns === 2)
   *   yield* fetchPrice("ACME").pipe(Effect.provide(kernel)) // the new result is served
   *   console.assert(bodyRuns === 2)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.2.0
   * @category checkpointing
   */
  static invalidate<I, A, E, R>(
    app: App<I, A, E, R>,
    input: I
  ): Effect.Effect<string, AppCacheError | CheckpointError, Dfk | R> {
    return withSpec("Dfk.invalidate", app, (k, spec) => k.invalidate(spec, input))
  }
}

/** The kernel of `Dfk.layer` and the spec of an app made by `App.make`, for `f`; else a defect naming `what`. */
const withSpec = <A, E>(
  what: string,
  app: object,
  f: (k: kernel.KernelService, spec: AppSpec) => Effect.Effect<A, E, any>
): Effect.Effect<A, E, any> =>
  Effect.flatMap(Dfk, (dfk) => {
    const spec = specOf(app)
    const k = dfk as kernel.KernelService
    return spec === undefined || typeof k.explain !== "function"
      ? Effect.dieMessage(`${what} needs an app made by App.make and the kernel of Dfk.layer`)
      : f(k, spec)
  })

/**
 * Options of `Dfk.progress`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProgressOptions {
  /** The shortest time between two values; default `"100 millis"`. */
  readonly interval?: Duration.DurationInput | undefined
}
