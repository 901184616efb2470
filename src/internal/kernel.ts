/**
 * The kernel: builds one `Dfk` service by wiring the pieces: the configuration, the store,
 * what is loaded, this run's dir, the counters, the checkpointer, the runner and the calls,
 * then what happens when the scope closes (the final pass, the summary) and the periodic
 * passes. Each piece is a file of its own (src/internal/README.md).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { CheckpointFiles } from "../CheckpointFiles.ts"
import type { DfkConfig, DfkService } from "../Dfk.ts"
import type { DfkError } from "../errors.ts"
import type { AppSpec } from "./appSpec.ts"
import { Calls } from "./calls.ts"
import { Checkpointer } from "./checkpointer.ts"
import { resolveConfig } from "./config.ts"
import { Control } from "./control.ts"
import { Counters } from "./counters.ts"
import { Explainer } from "./explain.ts"
import { FileHashes, HashCache } from "./files.ts"
import { Freshness } from "./freshness.ts"
import { loadAll } from "./loaded.ts"
import type { LoadedResult } from "./loaded.ts"
import { causeMessage, plural } from "./messages.ts"
import { queueFor } from "./pending.ts"
import { Runner } from "./runner.ts"
import { sharedResume } from "./shared.ts"
import { appendEncodedTo, checkpointsOf, currentStore, runsOf } from "./store.ts"

/**
 * The service a kernel makes: the public `DfkService`, and the entry point of app calls
 * (which `App.make`'s functions find on the `Dfk` service).
 */
export interface KernelService extends DfkService {
  /** One app call, from inside a running fiber that knows its tracer. */
  readonly run: (app: AppSpec, input: unknown, tracer: Tracer.Tracer) => Effect.Effect<unknown, unknown, unknown>
  /** `Dfk.explain`. */
  readonly explain: Control["explain"]
  /** `Dfk.invalidate`. */
  readonly invalidate: Control["invalidate"]
}

/** Builds a kernel in the current scope. */
export const make = (
  config: DfkConfig
): Effect.Effect<KernelService, DfkError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const cfg = yield* resolveConfig(config)
    if (cfg.checkpointPeriod !== undefined && cfg.checkpointMode !== "periodic") {
      yield* Effect.logWarning(
        `checkpointPeriod is set but checkpointMode is ${cfg.checkpointMode ?? "not set"}, so it is ignored; ` +
          `use checkpointMode: "periodic" for passes every period`
      )
    }
    const path = yield* Path.Path
    const store = yield* currentStore
    // Expiry and refresh of stored entries; the kernel's FileSystem and its cache of file
    // hashes (File.Content: each file hashed once per kernel) for its apps' schemas.
    const fresh = new Freshness(
      cfg.refresh,
      Date.now(),
      Context.make(FileSystem.FileSystem, yield* FileSystem.FileSystem).pipe(
        Context.add(FileHashes, new HashCache())
      )
    )

    // Which checkpoints to resume from: explicit ones always; otherwise every checkpoint under
    // runDir when a mode is set (listed before this run's dir exists). A store with lookups
    // is asked for keys as calls need them instead (shared.ts): nothing is loaded.
    const files = yield* Effect.serviceOption(CheckpointFiles)
    const lookups = store.lookup !== undefined && cfg.memoize
    // (With refresh: true no stored entry is served: nothing is loaded.)
    const dirs = lookups || cfg.refresh === true ? [] : Option.isSome(files)
      ? files.value
      : cfg.checkpointMode !== undefined
      ? yield* checkpointsOf(store, cfg.runDir)
      : []
    // Entries from a store that does not check them (as the JSON Lines store checks every
    // line) are checked for what the kernel uses of them.
    const loaded = cfg.memoize
      ? yield* loadAll(store, dirs, store.checksEntries !== true)
      : new Map<string, LoadedResult>()
    // Entries of the apps refreshed by name are never served: dropped.
    if (fresh.refreshing) { for (const [hash, entry] of loaded) if (fresh.refreshes(entry.app)) loaded.delete(hash) }

    const runDir = yield* Effect.flatMap(runsOf(store), (runs) => runs.allocate(cfg.runDir))
    const checkpointDir = path.join(runDir, "checkpoint")
    const shared = lookups ? sharedResume(store, Option.getOrUndefined(files), cfg, runDir) : undefined

    // (The counters ask the checkpointer for the pending count only once calls are made.)
    const counters = new Counters(() => checkpointer.size)
    const stats = counters.stats
    const checkpointer = new Checkpointer(
      queueFor(store, checkpointDir, { durability: cfg.durability }, appendEncodedTo(store)),
      checkpointDir,
      cfg.checkpointMode,
      (count) => {
        stats.checkpointed += count
        counters.notify()
      }
    )
    // App bodies under retries and slots; `running` counts them while they run.
    const runner = new Runner(cfg.retries, cfg.maxConcurrency, (delta) => {
      stats.running += delta
      counters.notify()
    })
    const calls = new Calls(cfg, counters, checkpointer, runner, loaded, () => counters.isClosed, shared, fresh)

    // Dfk.explain and explainMisses read the entries the kernel can see: what it loaded (or,
    // with lookups, what it looks in) and its own checkpoint.
    const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
    const seen = !lookups
      ? Effect.succeed([...dirs, checkpointDir])
      : shared === undefined
      ? Effect.succeed([checkpointDir])
      : shared.scope._tag === "Dirs"
      ? Effect.succeed([...shared.scope.dirs, checkpointDir])
      : Effect.provide(checkpointsOf(store, cfg.runDir), platform)
    const explainer = new Explainer(store, seen)
    const control = new Control(calls, checkpointer, explainer, cfg.memoize, fresh)
    if (cfg.explainMisses) {
      calls.explainMiss = (call) =>
        explainer.logMiss({
          app: call.app.name,
          version: call.app.version,
          input: JSON.parse(call.inputJson),
          key: call.hash
        })
    }

    // The one info line at the close: what this run wrote, how much of it was carried forward
    // from loaded checkpoints, and how many calls failed (failures are never checkpointed).
    const summary = (): Effect.Effect<void> =>
      Effect.suspend(() =>
        Effect.logInfo(
          `Checkpointed ${
            plural(stats.checkpointed, "task")
          } in this run (${checkpointer.carriedWritten()} from checkpoint, ` +
            `${calls.failedCalls} failed, not checkpointed)`
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
              `${
                plural(stats.running, "app body", "app bodies")
              } still running as the kernel closes: their results will not be checkpointed`
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

    yield* Effect.addFinalizer(() => Effect.sync(() => counters.close()))

    const service: KernelService = {
      runDir,
      checkpointDir,
      config: cfg,
      checkpoint: Effect.as(checkpointer.pass, checkpointDir),
      stats: Effect.sync(() => counters.snapshot()),
      detailedStats: Effect.sync(() => counters.detailed()),
      progress: (interval) => counters.progress(interval),
      run: (app, input, tracer) => calls.run(app, input, tracer),
      explain: (app, input, options) => control.explain(app, input, options),
      invalidate: (app, input) => control.invalidate(app, input)
    }
    return service
  })
