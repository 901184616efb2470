/**
 * The kernel: builds one `Dfk` service. It wires the pieces: configuration, the store, what
 * is loaded, this run's dir, the in-run memo and in-flight calls, app bodies under retries
 * and slots, checkpoint entries and passes, and what happens when the scope closes.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { CheckpointFiles } from "../CheckpointFiles.ts"
import { CheckpointStore } from "../CheckpointStore.ts"
import type { CheckpointStoreService } from "../CheckpointStore.ts"
import type { DfkConfig, DfkDetailedStats, DfkService, DfkStats } from "../Dfk.ts"
import { AppCacheError, CheckpointError } from "../errors.ts"
import * as Metrics from "../Metrics.ts"
import type { Outcome } from "../Metrics.ts"
import type { DfkError } from "../errors.ts"
import type { AppSpec } from "./appSpec.ts"
import { entryKeyProblem, quote, sha256Hex, tryCanonicalJson, withoutKeys } from "./canonical.ts"
import type { KnownKey } from "./canonical.ts"
import { Checkpointer } from "./checkpointer.ts"
import { resolveConfig } from "./config.ts"
import { kernelLine } from "./entry.ts"
import * as fileStore from "./fileStore.ts"
import { reasonOf } from "./fileStore.ts"
import { loadAll } from "./loaded.ts"
import type { LoadedResult } from "./loaded.ts"
import { Flight, outcomeOf, slotOf } from "./memo.ts"
import type { Slot } from "./memo.ts"
import { causeMessage, plural, Warning } from "./messages.ts"
import { decodeLoaded, resultLine } from "./results.ts"
import { appendEncodedOf, pendingFor } from "./pending.ts"
import * as runDirs from "./runDirs.ts"
import { Runner } from "./runner.ts"
import { nativeTracer, noSpan } from "./spans.ts"
import type { SpanLike } from "./spans.ts"

// Memo keys: the hashed text itself up to this length, else its sha256.
const SHORT_KEY = 128

/** Builds a kernel in the current scope. */
export const make = (
  config: DfkConfig
): Effect.Effect<DfkService, DfkError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const cfg = yield* resolveConfig(config)
    if (cfg.checkpointPeriod !== undefined && cfg.checkpointMode !== "periodic") {
      yield* Effect.logWarning(
        `checkpointPeriod is set but checkpointMode is ${cfg.checkpointMode ?? "not set"}, so it is ignored; ` +
          `use checkpointMode: "periodic" for passes every period`
      )
    }
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
    // The built-in store checks every line it reads; entries from any other store are
    // checked for what the kernel uses of them.
    const loaded = cfg.memoize ? yield* loadAll(store, dirs, appendEncodedOf(store) === undefined) : new Map<string, LoadedResult>()

    const runDir = yield* runDirs.allocate(cfg.runDir).pipe(
      Effect.mapError((cause) =>
        new CheckpointError({ path: cfg.runDir, reason: `Cannot create a run directory: ${reasonOf(cause)}`, cause })
      )
    )
    const checkpointDir = path.join(runDir, "checkpoint")

    const stats = { tasks: 0, hits: 0, misses: 0, fromCheckpoint: 0, running: 0, checkpointed: 0 }
    // For the summary at the close: calls of cached apps whose body failed.
    let failedCalls = 0

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
    const detailed = (): DfkDetailedStats => ({ ...stats, pending: checkpointer.size })
    const snapshot = (): DfkStats => ({
      tasks: stats.tasks,
      hits: stats.hits,
      misses: stats.misses,
      checkpointed: stats.checkpointed,
      pending: checkpointer.size
    })

    // Counts a served call: stats, the app-calls metric and the call's span.
    const record = (app: AppSpec, span: SpanLike, outcome: Outcome) => {
      if (outcome === "miss") stats.misses++
      else {
        stats.hits++
        if (outcome === "checkpoint") stats.fromCheckpoint++
      }
      Metrics.appCalls.unsafeUpdate(1, app.metricTags[outcome])
      span.attribute("outcome", outcome)
      notify()
    }
    const memo = new Map<string, Slot>()
    const checkpointer = new Checkpointer(
      pendingFor(store, checkpointDir, { durability: cfg.durability }),
      checkpointDir,
      cfg.checkpointMode,
      (count) => {
        stats.checkpointed += count
        notify()
      }
    )
    // App bodies under retries and slots; `running` counts them while they run.
    const runner = new Runner(cfg.retries, cfg.maxConcurrency, (delta) => {
      stats.running += delta
      notify()
    })

    // Queues an entry; returns its queue number.
    const enqueue = (line: string): number => {
      const seq = checkpointer.enqueue(line)
      notify()
      return seq
    }

    // Makes an outcome visible: to later calls (the memo) and to the callers waiting for it.
    const publish = (memoKey: string, exit: Exit.Exit<unknown, unknown>, flight: Flight) => {
      memo.set(memoKey, slotOf(exit))
      flight.done(exit)
      return exit
    }

    // Publishes an outcome whose entry has queue number `seq`: at once, or in task_exit mode
    // once the entry is written (with whatever else is pending).
    const published = (seq: number, memoKey: string, exit: Exit.Exit<unknown, unknown>, flight: Flight) =>
      cfg.checkpointMode === "task_exit"
        ? checkpointer.afterWrite(seq, () => publish(memoKey, exit, flight))
        : publish(memoKey, exit, flight)

    // Queues the entry of an outcome and publishes it (see `published`). An outcome that comes
    // after the kernel closed (a call its scope did not wait for) is published but not queued:
    // no pass will come to write it, and the warning says so.
    const queueAndPublish = (
      app: AppSpec,
      line: string,
      memoKey: string,
      exit: Exit.Exit<unknown, unknown>,
      flight: Flight
    ): Effect.Effect<unknown, unknown, unknown> =>
      closed && cfg.checkpointMode !== undefined
        ? Effect.zipRight(
          Effect.logWarning(`A result of ${app.name} came after the kernel closed, so it is not checkpointed`),
          Effect.suspend(() => publish(memoKey, exit, flight))
        )
        : published(enqueue(line), memoKey, exit, flight)

    // Publishes the result of a call that ran and queues its checkpoint entry. In task_exit
    // mode the waiters and the caller see it only once it is written.
    const settle = (
      app: AppSpec,
      memoKey: string,
      hash: string,
      inputJson: string,
      exit: Exit.Success<unknown, unknown>,
      flight: Flight
    ): Effect.Effect<unknown, unknown, unknown> => {
      const withEntry = (line: string | Warning) => {
        if (typeof line !== "string") {
          return Effect.zipRight(Effect.logWarning(line.message), Effect.suspend(() => publish(memoKey, exit, flight)))
        }
        return queueAndPublish(app, line, memoKey, exit, flight)
      }
      const line = resultLine(app, hash, inputJson, exit.value)
      return typeof line === "string" || line instanceof Warning ? withEntry(line) : Effect.flatMap(line, withEntry)
    }

    // Runs in an uninterruptible region; only the body itself (and waiting) is interruptible.
    const produce = (
      app: AppSpec,
      span: SpanLike,
      memoKey: string,
      hash: string,
      inputJson: string,
      input: unknown,
      flight: Flight,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
    ): Effect.Effect<unknown, unknown, unknown> => {
      const run = (): Effect.Effect<unknown, unknown, unknown> => {
        record(app, span, "miss")
        // Without retries and slots, the body runs as it is and `running` is kept here
        // (saves an ensuring and a suspend per miss).
        const plainBodies = runner.plain(app)
        if (plainBodies) runner.started()
        return Effect.matchCauseEffect(plainBodies ? restore(runner.bodyOf(app, input)) : runner.run(app, input, restore), {
          onFailure: (cause) => {
            if (plainBodies) runner.ended()
            // Interrupted (a finalizer of the body may have failed too): not memoized, and a
            // waiter runs the body instead.
            if (Cause.isInterrupted(cause)) {
              memo.delete(memoKey)
              flight.done(undefined)
              return Effect.failCause(cause)
            }
            failedCalls++
            return publish(memoKey, Exit.failCause(cause), flight)
          },
          onSuccess: (value) => {
            if (plainBodies) runner.ended()
            return settle(app, memoKey, hash, inputJson, Exit.succeed(value) as Exit.Success<unknown, unknown>, flight)
          }
        })
      }
      const entry = loaded.get(hash)
      if (entry === undefined) return run()
      loaded.delete(hash)
      // Integrity (DESIGN §3): an entry whose hash is not the key of its own app, version and
      // input (edited by hand, damaged, or written by a buggy tool) is never served.
      const problem = entryKeyProblem(entry)
      if (problem !== undefined) {
        return Effect.zipRight(
          Effect.logWarning(
            `A checkpointed entry of ${app.name} (${hash.slice(0, 12)}) is not served, so the app runs again: ${problem}`
          ),
          Effect.suspend(run)
        )
      }
      const served = (exit: Exit.Exit<unknown, unknown> | undefined): Effect.Effect<unknown, unknown, unknown> => {
        if (exit === undefined) return run()
        // Carried forward: written to this run's checkpoint like a fresh result, with the
        // call's canonical input. A result that cannot be serialized again (nested too deeply
        // for the serializer) makes the call a miss.
        const result = tryCanonicalJson(entry.result)
        if (typeof result !== "string") {
          return Effect.zipRight(
            Effect.logWarning(
              `A checkpointed result of ${app.name} (${hash.slice(0, 12)}) cannot be written again (${result.error}), so the app runs again`
            ),
            Effect.suspend(run)
          )
        }
        record(app, span, "checkpoint")
        const line = kernelLine(hash, app.lineInfix, inputJson, result, JSON.stringify(entry.time))
        // Already durable in the checkpoint it came from: the caller never waits for this
        // copy, in any mode (task_exit included); it goes with the next pass, at the close
        // at the latest.
        if (closed && cfg.checkpointMode !== undefined) return queueAndPublish(app, line, memoKey, exit, flight)
        checkpointer.enqueueCarried(line)
        notify()
        return publish(memoKey, exit, flight)
      }
      // The synchronous decoder first (no effect to run, the common case); the full one when
      // it fails, which may only mean that the schema needs effects (and says why otherwise).
      let decoded: Either.Either<unknown, ParseResult.ParseError> | undefined
      try {
        decoded = app.decodeOutputSync(entry.result)
      } catch {
        decoded = undefined
      }
      return decoded !== undefined && Either.isRight(decoded)
        ? served(Exit.succeed(decoded.right))
        : Effect.flatMap(decodeLoaded(app, hash, entry), served)
    }

    // The check of the memo and the claim of a missing key happen in one synchronous step,
    // so exactly one of several concurrent callers runs the body; the others wait for it.
    const lookup = (
      app: AppSpec,
      span: SpanLike,
      memoKey: string,
      hash: string,
      inputJson: string,
      input: unknown
    ): Effect.Effect<unknown, unknown, unknown> =>
      // (The mask calls its function when it runs, inside the region: no suspend needed.)
      Effect.uninterruptibleMask((restore) => {
        const slot = memo.get(memoKey)
        if (slot === undefined) {
          const flight = new Flight()
          memo.set(memoKey, flight)
          return produce(app, span, memoKey, hash, inputJson, input, flight, restore)
        }
        if (!(slot instanceof Flight)) {
          record(app, span, "hit")
          return outcomeOf(slot)
        }
        return Effect.flatMap(restore(slot.wait()), (exit) => {
          if (exit === undefined) return lookup(app, span, memoKey, hash, inputJson, input)
          record(app, span, "dedup")
          return exit
        })
      })

    // A call whose input is encoded: the key, then the memo (a hit is served right here).
    const keyed = (app: AppSpec, span: SpanLike, encoded: unknown, input: unknown): Effect.Effect<unknown, unknown, unknown> => {
      if (
        app.ignoreForCache.length > 0 && (typeof encoded !== "object" || encoded === null || Array.isArray(encoded))
      ) {
        return Effect.fail(
          new AppCacheError({ app: app.name, reason: "ignoreForCache names input keys, but the encoded input is not an object" })
        )
      }
      const filtered = withoutKeys(encoded, app.ignoreForCache)
      const json = tryCanonicalJson(filtered)
      if (typeof json !== "string") {
        return Effect.fail(new AppCacheError({ app: app.name, reason: `The input has no JSON form: ${json.error}` }))
      }
      // The memo is keyed by the hashed text itself when it is short (a hit then needs no
      // sha256), else by the hash; the two cannot collide (the text starts with "[").
      const text = app.keyPrefix + json + "]"
      const short = text.length <= SHORT_KEY
      const memoKey = short ? text : sha256Hex(text)
      const slot = memo.get(memoKey)
      if (slot !== undefined && !(slot instanceof Flight)) {
        if (span !== noSpan) span.attribute("hash", short ? sha256Hex(text) : memoKey)
        record(app, span, "hit")
        return outcomeOf(slot)
      }
      const hash = short ? sha256Hex(text) : memoKey
      span.attribute("hash", hash)
      if (slot === undefined && loaded.size > 0) {
        const entry = loaded.get(hash)
        if (entry !== undefined) {
          const served = servedFromCheckpoint(app, span, memoKey, hash, { text, prefix: app.keyPrefix, input: filtered }, json, entry)
          if (served !== undefined) return served
        }
      }
      return runner.lendSlot(lookup(app, span, memoKey, hash, json, input))
    }

    // A call answered by a loaded entry, served in one synchronous step when it can be (the
    // common case): the entry passes the integrity rule, decodes without effects and
    // serializes again. Then nothing can come between the check of the memo and the memo's
    // answer, so no claim, mask or flight is needed. `undefined`: take the full path
    // (lookup → produce), which also says why an entry is not served.
    const servedFromCheckpoint = (
      app: AppSpec,
      span: SpanLike,
      memoKey: string,
      hash: string,
      key: KnownKey,
      inputJson: string,
      entry: LoadedResult
    ): Exit.Exit<unknown, unknown> | undefined => {
      if (closed || entry.app !== app.name || entry.version !== app.version) return undefined
      if (entryKeyProblem(entry, key) !== undefined) return undefined
      let decoded: Either.Either<unknown, ParseResult.ParseError>
      try {
        decoded = app.decodeOutputSync(entry.result)
      } catch {
        return undefined
      }
      if (Either.isLeft(decoded)) return undefined
      const result = tryCanonicalJson(entry.result)
      if (typeof result !== "string") return undefined
      loaded.delete(hash)
      record(app, span, "checkpoint")
      // Carried forward, and not waited for (see `produce`).
      checkpointer.enqueueCarried(kernelLine(hash, app.lineInfix, inputJson, result, quote(entry.time)))
      notify()
      const exit = Exit.succeed(decoded.right)
      memo.set(memoKey, slotOf(exit))
      return exit
    }

    const encodeFailed = (app: AppSpec, e: ParseResult.ParseError) =>
      new AppCacheError({ app: app.name, reason: `The input does not encode with the input schema: ${e.message}` })

    // Names (with versions) are unique per kernel: a second app definition under the name and
    // version of one already called would be served the other's entries, typed as its own.
    // The app of the last call is remembered, so a run of calls of one app costs one compare.
    const appsByKey = new Map<string, AppSpec>()
    let lastApp: AppSpec | undefined
    const nameTaken = (app: AppSpec): AppCacheError | undefined => {
      if (app.ignoreProblem !== undefined && app.cache && cfg.memoize) {
        return new AppCacheError({ app: app.name, reason: app.ignoreProblem })
      }
      const known = appsByKey.get(app.keyPrefix)
      if (known === undefined) appsByKey.set(app.keyPrefix, app)
      else if (known !== app) {
        return new AppCacheError({
          app: app.name,
          reason: `Another app named ${app.name} (version ${app.version ?? "null"}) was already called in this run; ` +
            "app names (with versions) must be unique"
        })
      }
      lastApp = app
      return undefined
    }

    // Runs when the call's effect runs (from `run`, inside the fiber), so no suspend is needed.
    const callWith = (app: AppSpec, input: unknown, span: SpanLike): Effect.Effect<unknown, unknown, unknown> => {
      if (app !== lastApp) {
        const taken = nameTaken(app)
        if (taken !== undefined) return Effect.fail(taken)
      }
      stats.tasks++
      if (!app.cache || !cfg.memoize) {
        record(app, span, "miss")
        return runner.lendSlot(Effect.uninterruptibleMask((restore) => runner.run(app, input, restore)))
      }
      const encoded = app.encodeInputSync(input)
      if (Either.isRight(encoded)) return keyed(app, span, encoded.right, input)
      // The synchronous encoder fails for schemas that need effects too: ask the full one.
      return app.encodeInput(input).pipe(
        Effect.mapError((e) => encodeFailed(app, e)),
        Effect.flatMap((value) => keyed(app, span, value, input))
      )
    }

    // A span per call, named after the app, with the attributes app, hash and outcome, when a
    // tracer is installed (with Effect's built-in tracer nobody could see it, so none is made).
    const run = (app: AppSpec, input: unknown, tracer: Tracer.Tracer): Effect.Effect<unknown, unknown, unknown> =>
      tracer === nativeTracer
        ? callWith(app, input, noSpan)
        : Effect.useSpan(app.name, { attributes: { app: app.name }, captureStackTrace: false }, (span) =>
          Effect.withParentSpan(Effect.suspend(() => callWith(app, input, span)), span))

    const call = (app: AppSpec, input: unknown): Effect.Effect<unknown, unknown, unknown> =>
      Effect.withFiberRuntime((fiber) => run(app, input, fiber.currentTracer))

    // Progress: the counters now, then again after each change (at most once per
    // interval), until the kernel closes.
    const progress = (interval: Duration.Duration): Stream.Stream<DfkDetailedStats> =>
      Stream.concat(
        Stream.sync(detailed),
        Stream.repeatEffectOption(
          Effect.suspend(() =>
            closed ? Effect.fail(Option.none()) : nextChange.pipe(
              Effect.zipRight(Effect.sleep(interval)),
              Effect.map(detailed)
            )
          )
        )
      )

    // The one info line at the close: what this run wrote, how much of it was carried forward
    // from loaded checkpoints, and how many calls failed (failures are never checkpointed).
    const summary = (): Effect.Effect<void> =>
      Effect.suspend(() =>
        Effect.logInfo(
          `Checkpointed ${plural(stats.checkpointed, "task")} in this run (${checkpointer.carriedWritten()} from checkpoint, ` +
            `${failedCalls} failed, not checkpointed)`
        )
      )

    // Every mode writes what is pending when the scope closes (after the periodic fiber,
    // forked below, has been stopped: finalizers run in reverse order).
    if (cfg.checkpointMode !== undefined) {
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          // A failed final pass fails the kernel's scope. (A finalizer's type has no error
          // channel; the failure is a CheckpointError, which every program that provides
          // `Dfk.layer` may fail with.)
          const final = checkpointer.final(summary) as Effect.Effect<void, unknown> as Effect.Effect<void>
          // Bodies still running (in fibers the scope did not wait for) finish too late to be
          // written: say so rather than lose them in silence.
          return stats.running === 0 ? final : Effect.zipRight(
            Effect.logWarning(
              `${plural(stats.running, "app body", "app bodies")} still running as the kernel closes: their results will not be checkpointed`
            ),
            final
          )
        })
      )
    }

    // Periodic passes run in the kernel's scope, the first one a period after the start (so
    // that the timing is the schedule's alone, also under a TestClock); a failed pass is
    // logged and retried next time.
    if (cfg.checkpointMode === "periodic" && cfg.checkpointPeriod !== undefined) {
      yield* checkpointer.pass.pipe(
        // A defect (a bug in a store or a FileSystem layer) is logged too, and the passes go on.
        // (When the scope closes, this fiber is interrupted between passes, never inside one.)
        Effect.catchAllCause((cause) =>
          checkpointer.failureLogged("Periodic checkpoint failed; entries stay pending", causeMessage(cause))
        ),
        Effect.schedule(Schedule.spaced(cfg.checkpointPeriod)),
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
      checkpoint: Effect.as(checkpointer.pass, checkpointDir),
      stats: Effect.sync(snapshot),
      detailedStats: Effect.sync(detailed),
      progress,
      call,
      run
    }
    return service
  })
