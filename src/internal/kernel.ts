/**
 * The kernel: in-run memo, in-flight dedup, checkpoint passes, loading and run dirs.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as MetricLabel from "effect/MetricLabel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { CheckpointFiles } from "../CheckpointFiles.ts"
import { CheckpointStore } from "../CheckpointStore.ts"
import type { CheckpointEntry, CheckpointStoreService, Durability } from "../CheckpointStore.ts"
import type { CheckpointMode, DfkConfig, DfkService, DfkStats } from "../Dfk.ts"
import { AppCacheError, CheckpointError, ConfigurationError } from "../errors.ts"
import * as Metrics from "../Metrics.ts"
import type { Outcome } from "../Metrics.ts"
import type { DfkError } from "../errors.ts"
import { canonicalJson, keyFromJson, NotJson, withoutKeys } from "./canonical.ts"
import { KernelEntry } from "./entry.ts"
import * as fileStore from "./fileStore.ts"
import * as runDirs from "./runDirs.ts"

/** What the kernel needs to know of an app; built once per app by `App.make`. */
export interface AppSpec {
  readonly name: string
  readonly version: string | null
  readonly cache: boolean
  readonly ignoreForCache: ReadonlyArray<string>
  readonly encodeInput: (input: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  readonly encodeOutput: (output: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  readonly decodeOutput: (encoded: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  readonly body: (input: any) => Effect.Effect<any, any, any>
  /** The `app` label of its metrics. */
  readonly label: MetricLabel.MetricLabel
}

/** The configuration after validation. */
export interface ResolvedConfig {
  readonly runDir: string
  readonly memoize: boolean
  readonly checkpointMode: CheckpointMode | undefined
  readonly checkpointPeriod: Duration.Duration | undefined
  readonly retries: number
  readonly maxConcurrency: number | undefined
  readonly durability: Durability
}

const MODES: ReadonlyArray<CheckpointMode> = ["task_exit", "periodic", "dfk_exit", "manual"]
const HMS = /^(\d+):(\d{1,2}):(\d{1,2})$/

/** Parses a checkpoint period: `"HH:MM:SS"` or any `Duration` input. */
export const parsePeriod = (
  input: Duration.DurationInput | string
): Option.Option<Duration.Duration> => {
  if (typeof input === "string") {
    const m = HMS.exec(input.trim())
    if (m !== null) {
      const [h, min, s] = [Number(m[1]), Number(m[2]), Number(m[3])]
      if (min > 59 || s > 59) return Option.none()
      return Option.some(Duration.seconds(h * 3600 + min * 60 + s))
    }
  }
  return Duration.decodeUnknown(input)
}

const configError = (field: string, reason: string) => new ConfigurationError({ field, reason })

/** Validates a `DfkConfig`. */
export const resolveConfig = (config: DfkConfig): Effect.Effect<ResolvedConfig, ConfigurationError> =>
  Effect.suspend(() => {
    const runDir = config.runDir ?? "runinfo"
    if (typeof runDir !== "string" || runDir === "") {
      return Effect.fail(configError("runDir", "It must be a non-empty path"))
    }
    const mode = config.checkpointMode
    if (mode !== undefined && !MODES.includes(mode)) {
      return Effect.fail(
        configError("checkpointMode", `Unknown mode ${JSON.stringify(mode)}; expected one of ${MODES.join(", ")}`)
      )
    }
    let period: Duration.Duration | undefined
    if (config.checkpointPeriod !== undefined) {
      const parsed = parsePeriod(config.checkpointPeriod)
      if (Option.isNone(parsed)) {
        return Effect.fail(
          configError(
            "checkpointPeriod",
            `Cannot read ${JSON.stringify(String(config.checkpointPeriod))} as "HH:MM:SS" or a duration`
          )
        )
      }
      if (!Duration.greaterThan(parsed.value, Duration.zero) || !Duration.isFinite(parsed.value)) {
        return Effect.fail(configError("checkpointPeriod", "The period must be finite and longer than zero"))
      }
      period = parsed.value
    }
    if (mode === "periodic" && period === undefined) {
      return Effect.fail(configError("checkpointPeriod", "The periodic checkpoint mode needs a checkpointPeriod"))
    }
    const retries = config.retries ?? 0
    if (!Number.isInteger(retries) || retries < 0) {
      return Effect.fail(configError("retries", "It must be a whole number, zero or more"))
    }
    const maxConcurrency = config.maxConcurrency
    if (maxConcurrency !== undefined && (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)) {
      return Effect.fail(configError("maxConcurrency", "It must be a whole number, one or more"))
    }
    const durability = config.durability ?? "none"
    if (durability !== "none" && durability !== "fsync") {
      return Effect.fail(configError("durability", `Unknown durability ${JSON.stringify(durability)}; expected none or fsync`))
    }
    return Effect.succeed({
      durability,
      runDir,
      memoize: config.memoize ?? true,
      checkpointMode: mode,
      checkpointPeriod: period,
      retries,
      maxConcurrency
    })
  })

type Slot =
  | { readonly _tag: "Done"; readonly exit: Exit.Exit<unknown, unknown> }
  // Resolved with the outcome, or with `undefined` when the executing call was interrupted.
  | { readonly _tag: "Running"; readonly deferred: Deferred.Deferred<Exit.Exit<unknown, unknown> | undefined> }

interface Lending {
  nested: number
}

/** The slot a running app body holds, so that apps it calls can borrow it (no deadlock). */
const currentLending = FiberRef.unsafeMake<Lending | null>(null)

const outcomeLabels: Record<Outcome, MetricLabel.MetricLabel> = {
  hit: MetricLabel.make("outcome", "hit"),
  miss: MetricLabel.make("outcome", "miss"),
  dedup: MetricLabel.make("outcome", "dedup"),
  checkpoint: MetricLabel.make("outcome", "checkpoint")
}

const reasonOf = (e: unknown): string => e instanceof Error ? e.message : String(e)

const jsonOf = (value: unknown): string | { readonly error: string } => {
  try {
    return canonicalJson(value)
  } catch (e) {
    if (e instanceof NotJson) return { error: e.message }
    if (e instanceof RangeError) return { error: "the value is nested too deeply" }
    throw e
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** Builds a kernel in the current scope. */
export const make = (
  config: DfkConfig
): Effect.Effect<DfkService, DfkError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const cfg = yield* resolveConfig(config)
    const path = yield* Path.Path
    const storeOption = yield* Effect.serviceOption(CheckpointStore)
    const store: CheckpointStoreService = Option.isSome(storeOption) ? storeOption.value : yield* fileStore.make

    // Which checkpoints to load: explicit ones always; otherwise every checkpoint under
    // runDir when a mode is set (read before this run's dir exists).
    const files = yield* Effect.serviceOption(CheckpointFiles)
    const dirs = Option.isSome(files)
      ? files.value
      : cfg.checkpointMode !== undefined
      ? yield* runDirs.allCheckpoints(cfg.runDir)
      : []
    const loaded = new Map<string, CheckpointEntry>()
    if (cfg.memoize) {
      for (const dir of dirs) {
        const before = loaded.size
        let count = 0
        yield* store.load(dir, (entry) => {
          count++
          loaded.set(entry.hash, entry)
        })
        yield* Effect.logDebug(`Loaded ${plural(count, "entry", "entries")} from ${dir} (${loaded.size - before} new keys)`)
      }
      if (dirs.length > 0) {
        yield* Effect.logInfo(`Loaded ${plural(loaded.size, "result")} from ${plural(dirs.length, "checkpoint")}`)
      }
    }

    const runDir = yield* runDirs.allocate(cfg.runDir).pipe(
      Effect.mapError((cause) =>
        new CheckpointError({ path: cfg.runDir, reason: `Cannot create a run directory: ${reasonOf(cause)}`, cause })
      )
    )
    const checkpointDir = path.join(runDir, "checkpoint")

    const stats = { tasks: 0, hits: 0, misses: 0, fromCheckpoint: 0, running: 0, checkpointed: 0 }

    // Progress: waiters of the next change of the counters. Notifying costs one check when
    // nobody listens.
    let changed: Deferred.Deferred<void> | undefined
    let closed = false
    const notify = () => {
      if (changed !== undefined) {
        const d = changed
        changed = undefined
        Deferred.unsafeDone(d, Exit.void)
      }
    }
    const nextChange = Effect.suspend(() => {
      if (closed) return Effect.void
      if (changed === undefined) changed = Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.await(changed)
    })
    const snapshot = (): DfkStats => ({ ...stats, pending: pending.length })

    // Counts a served call: stats, the app-calls metric and the call's span.
    const record = (app: AppSpec, span: Tracer.Span, outcome: Outcome) => {
      if (outcome === "miss") stats.misses++
      else {
        stats.hits++
        if (outcome === "checkpoint") stats.fromCheckpoint++
      }
      Metrics.appCalls.unsafeUpdate(1, [outcomeLabels[outcome], app.label])
      span.attribute("outcome", outcome)
      notify()
    }
    const memo = new Map<string, Slot>()
    let pending: Array<CheckpointEntry> = []
    let queued = 0 // entries ever queued
    let written = 0 // entries ever written (a prefix of the queue, in order)
    const passLock = yield* Effect.makeSemaphore(1)
    const appendOptions = { durability: cfg.durability }
    const slots = cfg.maxConcurrency === undefined ? undefined : yield* Effect.makeSemaphore(cfg.maxConcurrency)

    // One checkpoint pass: takes every pending entry and appends it. On failure the entries
    // go back to the front of the queue, so the next pass writes them. Uninterruptible, so
    // a pass that has started always ends with its entries either written or pending.
    const passUnlocked: Effect.Effect<void, CheckpointError> = Effect.suspend(() => {
      const batch = pending
      pending = []
      return store.append(checkpointDir, batch, appendOptions).pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            pending = batch.concat(pending)
          })
        ),
        Effect.zipRight(Effect.suspend(() => {
          written += batch.length
          stats.checkpointed += batch.length
          Metrics.entriesCheckpointed.unsafeUpdate(batch.length, [])
          notify()
          return batch.length > 0
            ? Effect.logInfo(`Done checkpointing ${batch.length} tasks`)
            : Effect.logInfo("No tasks checkpointed in this pass")
        })),
        Metric.trackDuration(Metrics.checkpointPassDuration),
        Effect.withSpan("dfk.checkpoint", { attributes: { dir: checkpointDir, entries: batch.length } })
      )
    })
    const pass = passUnlocked.pipe(passLock.withPermits(1), Effect.uninterruptible)

    // Writes until the entry with queue number `seq` is on disk; one write serves every
    // entry queued while the previous write was under way (group commit).
    const writeThrough = (seq: number): Effect.Effect<void, CheckpointError> =>
      Effect.suspend(() => written >= seq ? Effect.void : passUnlocked).pipe(
        passLock.withPermits(1),
        Effect.uninterruptible
      )

    const enqueue = (entry: CheckpointEntry): Effect.Effect<void> =>
      Effect.suspend(() => {
        pending.push(entry)
        const seq = ++queued
        if (cfg.checkpointMode !== "task_exit") return Effect.void
        return writeThrough(seq).pipe(
          Effect.catchAll((e) =>
            Effect.logError(`Checkpoint write failed; the entry stays pending: ${e.message}`)
          )
        )
      })

    const runBody = (app: AppSpec, input: unknown): Effect.Effect<unknown, unknown, unknown> => {
      let body: Effect.Effect<unknown, unknown, unknown> = Effect.suspend(() => {
        stats.running++
        notify()
        return app.body(input)
      }).pipe(Effect.ensuring(Effect.sync(() => {
        stats.running--
        notify()
      })))
      if (cfg.retries > 0) {
        body = body.pipe(
          Effect.sandbox,
          Effect.retry({ times: cfg.retries, while: (cause) => !Cause.isInterruptedOnly(cause) }),
          Effect.unsandbox
        )
      }
      if (slots === undefined) return body
      return Effect.locally(slots.withPermits(1)(body), currentLending, { nested: 0 })
    }

    // With maxConcurrency, an app body that calls other apps lends its slot while they run,
    // as Parsl's join apps hold no worker slot while they wait.
    const lendSlot = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      slots === undefined ? effect : Effect.flatMap(FiberRef.get(currentLending), (lending) =>
        lending === null ? effect : Effect.acquireUseRelease(
          Effect.suspend(() => lending.nested++ === 0 ? slots.release(1) : Effect.void),
          () => effect,
          () => Effect.suspend(() => --lending.nested === 0 ? slots.take(1) : Effect.void)
        ))

    const completed = (
      app: AppSpec,
      key: string,
      inputJson: string,
      exit: Exit.Exit<unknown, unknown>
    ): Effect.Effect<void> => {
      if (Exit.isFailure(exit)) return Effect.void
      return app.encodeOutput(exit.value).pipe(
        Effect.flatMap((encoded) => {
          const json = jsonOf(encoded)
          if (typeof json !== "string") {
            return Effect.logWarning(`The result of ${app.name} cannot be checkpointed: it has no JSON form (${json.error})`)
          }
          return Effect.flatMap(Clock.currentTimeMillis, (now) =>
            enqueue(new KernelEntry(key, app.name, app.version, inputJson, json, new Date(now).toISOString())))
        }),
        Effect.catchAll((e) =>
          Effect.logWarning(`The result of ${app.name} cannot be checkpointed: it does not encode with the output schema: ${e.message}`)
        )
      ) as Effect.Effect<void>
    }

    // Decodes a loaded entry with the app's output schema; `undefined` (and a warning) when
    // it no longer decodes, which makes the call a miss.
    const fromCheckpoint = (app: AppSpec, key: string, entry: CheckpointEntry) =>
      app.decodeOutput(entry.result).pipe(
        Effect.tap(() => enqueue(entry)),
        Effect.map(Exit.succeed),
        Effect.catchAll((e) =>
          Effect.as(
            Effect.logWarning(
              `A checkpointed result of ${app.name} (${key.slice(0, 12)}) no longer decodes with its output schema, so the app runs again: ${e.message}`
            ),
            undefined
          )
        )
      ) as Effect.Effect<Exit.Exit<unknown, unknown> | undefined>

    // Runs in an uninterruptible region; only the body itself (and waiting) is interruptible.
    const produce = (
      app: AppSpec,
      span: Tracer.Span,
      key: string,
      inputJson: string,
      input: unknown,
      deferred: Deferred.Deferred<Exit.Exit<unknown, unknown> | undefined>,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
    ): Effect.Effect<unknown, unknown, unknown> =>
      Effect.gen(function*() {
        const entry = loaded.get(key)
        if (entry !== undefined) {
          loaded.delete(key)
          const exit = yield* fromCheckpoint(app, key, entry)
          if (exit !== undefined) {
            record(app, span, "checkpoint")
            memo.set(key, { _tag: "Done", exit })
            yield* Deferred.succeed(deferred, exit)
            return exit
          }
        }
        record(app, span, "miss")
        const exit = yield* Effect.exit(restore(runBody(app, input)))
        if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
          memo.delete(key)
          yield* Deferred.succeed(deferred, undefined)
          return exit
        }
        yield* completed(app, key, inputJson, exit)
        memo.set(key, { _tag: "Done", exit })
        yield* Deferred.succeed(deferred, exit)
        return exit
      }).pipe(Effect.flatten)

    // The check of the memo and the claim of a missing key happen in one synchronous step,
    // so exactly one of several concurrent callers runs the body; the others wait for it.
    const lookup = (
      app: AppSpec,
      span: Tracer.Span,
      key: string,
      inputJson: string,
      input: unknown
    ): Effect.Effect<unknown, unknown, unknown> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const slot = memo.get(key)
          if (slot === undefined) {
            const deferred = Deferred.unsafeMake<Exit.Exit<unknown, unknown> | undefined>(FiberId.none)
            memo.set(key, { _tag: "Running", deferred })
            return produce(app, span, key, inputJson, input, deferred, restore)
          }
          if (slot._tag === "Done") {
            record(app, span, "hit")
            return slot.exit
          }
          return Effect.flatMap(restore(Deferred.await(slot.deferred)), (exit) => {
            if (exit === undefined) return lookup(app, span, key, inputJson, input)
            record(app, span, "dedup")
            return exit
          })
        })
      )

    // One span per call, named after the app, with the attributes app, hash and outcome.
    const call = (app: AppSpec, input: unknown): Effect.Effect<unknown, unknown, unknown> =>
      Effect.useSpan(app.name, { attributes: { app: app.name } }, (span) =>
        Effect.withParentSpan(
          Effect.suspend(() => {
            stats.tasks++
            if (!app.cache || !cfg.memoize) {
              record(app, span, "miss")
              return lendSlot(runBody(app, input))
            }
            return app.encodeInput(input).pipe(
              Effect.mapError((e) =>
                new AppCacheError({ app: app.name, reason: `The input does not encode with the input schema: ${e.message}` })
              ),
              Effect.flatMap((encoded) => {
                const json = jsonOf(withoutKeys(encoded, app.ignoreForCache))
                if (typeof json !== "string") {
                  return Effect.fail(new AppCacheError({ app: app.name, reason: `The input has no JSON form: ${json.error}` }))
                }
                const key = keyFromJson(app.name, app.version, json)
                span.attribute("hash", key)
                return lendSlot(lookup(app, span, key, json, input))
              })
            )
          }),
          span
        ))

    // Progress: the counters now, then again after each change (at most once per
    // interval), until the kernel closes.
    const progress = (interval: Duration.Duration): Stream.Stream<DfkStats> =>
      Stream.concat(
        Stream.sync(snapshot),
        Stream.repeatEffectOption(
          Effect.suspend(() =>
            closed ? Effect.fail(Option.none()) : nextChange.pipe(
              Effect.zipRight(Effect.sleep(interval)),
              Effect.map(snapshot)
            )
          )
        )
      )

    // Every mode writes what is pending when the scope closes (after the periodic fiber,
    // forked below, has been stopped: finalizers run in reverse order).
    if (cfg.checkpointMode !== undefined) {
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          const lost = pending.length
          return pass.pipe(
            Effect.catchAll((e) =>
              Effect.logError(`Final checkpoint failed: ${plural(lost, "entry", "entries")} lost: ${e.message}`)
            )
          )
        })
      )
    }

    // Periodic passes run in the kernel's scope; a failed pass is logged and retried next time.
    if (cfg.checkpointMode === "periodic" && cfg.checkpointPeriod !== undefined) {
      yield* pass.pipe(
        Effect.catchAll((e) => Effect.logError(`Periodic checkpoint failed; entries stay pending: ${e.message}`)),
        Effect.repeat(Schedule.spaced(cfg.checkpointPeriod)),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        notify()
      })
    )

    const service: DfkService = {
      runDir,
      checkpointDir,
      config: cfg,
      checkpoint: Effect.as(pass, checkpointDir),
      stats: Effect.sync(snapshot),
      progress,
      call
    }
    return service
  })
