/**
 * Calls: one app call from its input to its outcome. The key, the in-run memo (hits,
 * in-flight dedup), a result served from a loaded checkpoint (carried forward), a body that
 * runs (under the runner), and the entry of its result (queued; in task_exit mode waited
 * for). Where to look for "how a hit is served" or "what a miss does".
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as ParseResult from "effect/ParseResult"
import type * as Tracer from "effect/Tracer"
import type { EncodedEntry } from "../CheckpointStore.ts"
import { AppCacheError } from "../errors.ts"
import type { AppSpec } from "./appSpec.ts"
import { entryKeyProblem, sha256Hex, tryCanonicalJson, withoutKeys } from "./canonical.ts"
import type { KnownKey } from "./canonical.ts"
import type { Checkpointer } from "./checkpointer.ts"
import type { ResolvedConfig } from "./config.ts"
import type { Counters } from "./counters.ts"
import { fileProblems } from "./files.ts"
import type { Freshness } from "./freshness.ts"
import { LoadedResult } from "./loaded.ts"
import { Failed, Flight, outcomeOf, slotOf } from "./memo.ts"
import type { Slot } from "./memo.ts"
import { oneLine, Warning } from "./messages.ts"
import { decodeLoaded, decodeLoadedSync, encodedEntry, resultEntry } from "./results.ts"
import type { Runner } from "./runner.ts"
import type { Shared } from "./shared.ts"
import { nativeTracer, noSpan } from "./spans.ts"
import type { SpanLike } from "./spans.ts"

/** Memo keys: the hashed text itself up to this length, else its sha256. */
export const SHORT_KEY = 128

/** The failure of a call whose input does not encode (a missing or unreadable file: said as it is). */
export const encodeFailed = (app: AppSpec, e: ParseResult.ParseError) => {
  // A file of the input (File.Content, File.Stat) that is missing or unreadable: said as it is.
  const files = fileProblems(e.issue)
  return new AppCacheError({
    app: app.name,
    reason: files.length > 0 ? files.join("; ") : `The input does not encode with the input schema: ${e.message}`
  })
}

/** The failure of a call with `ignoreForCache` whose encoded input is not an object. */
export const notAnObject = (app: AppSpec) =>
  new AppCacheError({
    app: app.name,
    reason: "ignoreForCache names input keys, but the encoded input is not an object"
  })

/** The failure of a call whose encoded input has no JSON form. */
export const noJsonForm = (app: AppSpec, error: string) =>
  new AppCacheError({ app: app.name, reason: `The input has no JSON form: ${error}` })

/**
 * One call of a cached app once its key is known: what each step (lookup, produce, settle,
 * publish) needs, in one record rather than passed along one value at a time.
 */
export class Call {
  constructor(
    readonly app: AppSpec,
    readonly span: SpanLike,
    /** The memo's key: the hashed text when it is short, else the hash. */
    readonly memoKey: string,
    /** The memo key of DESIGN §3: sha256 of the hashed text. */
    readonly hash: string,
    /** The canonical JSON of the encoded input (less the `ignoreForCache` keys). */
    readonly inputJson: string,
    /** The input as the caller gave it. */
    readonly input: unknown,
    /** The execution in flight for this key, once this call runs it. */
    public flight: Flight
  ) {}
  /** A stored entry was refused (expired, refreshed, stale): the body runs, whatever a claim finds. */
  refused = false
}

const NO_FLIGHT = undefined as unknown as Flight

/** A body that ran under a claim (`claimed`) or unclaimed: its outcome, to settle. */
class BodyRan {
  constructor(readonly exit: Exit.Exit<unknown, unknown>, readonly claimed: boolean) {}
}

/** The app calls of one kernel. */
export class Calls {
  /** The in-run memo: by key, an execution in flight, a failure, or a success. */
  private readonly memo = new Map<string, Slot>()
  /** The apps called so far, by the fixed start of their keys (name and version). */
  private readonly appsByKey = new Map<string, AppSpec>()
  private lastApp: AppSpec | undefined
  /** Calls of cached apps whose body failed (for the summary at the close). */
  failedCalls = 0
  /** With `explainMisses`: logs why a call missed (set by the kernel). */
  explainMiss: ((call: Call) => Effect.Effect<void>) | undefined = undefined

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly counters: Counters,
    private readonly checkpointer: Checkpointer,
    private readonly runner: Runner,
    /** Loaded entries not served yet, by hash. */
    private readonly loaded: Map<string, LoadedResult>,
    /** Whether the kernel has closed (its scope's finalizers ran). */
    private readonly isClosed: () => boolean,
    /** A store that answers lookups on demand (and may claim keys), when the kernel resumes from one. */
    private readonly shared: Shared | undefined,
    /** Expiry and refresh of stored entries; the services of the apps' schemas. */
    private readonly fresh: Freshness
  ) {}

  // Dfk.invalidate: the memo forgets a key (not a call in flight) and a loaded entry of it is dropped.
  forget(memoKey: string, hash: string): void {
    if (!(this.memo.get(memoKey) instanceof Flight)) this.memo.delete(memoKey)
    this.loaded.delete(hash)
  }

  // Dfk.explain: whether the memo holds a success for a key.
  memoized(memoKey: string): boolean {
    const slot = this.memo.get(memoKey)
    return slot !== undefined && !(slot instanceof Flight) && !(slot instanceof Failed)
  }

  // Queues an entry; returns its queue number.
  enqueue(entry: EncodedEntry): number {
    const seq = this.checkpointer.enqueue(entry)
    this.counters.notify()
    return seq
  }

  // Makes an outcome visible: to later calls (the memo) and to the callers waiting for it.
  publish(call: Call, exit: Exit.Exit<unknown, unknown>) {
    this.memo.set(call.memoKey, slotOf(exit))
    call.flight.done(exit)
    return exit
  }

  // Publishes an outcome whose entry has queue number `seq`: at once, or in task_exit mode
  // once the entry is written (with whatever else is pending).
  published(seq: number, call: Call, exit: Exit.Exit<unknown, unknown>) {
    return this.cfg.checkpointMode === "task_exit"
      ? this.checkpointer.afterWrite(seq, () => this.publish(call, exit))
      : this.publish(call, exit)
  }

  // Queues the entry of an outcome and publishes it (see `published`). An outcome that comes
  // after the kernel closed (a call its scope did not wait for) is published but not queued:
  // no pass will come to write it, and the warning says so.
  queueAndPublish(
    call: Call,
    entry: EncodedEntry,
    exit: Exit.Exit<unknown, unknown>
  ): Effect.Effect<unknown, unknown, unknown> {
    return this.isClosed() && this.cfg.checkpointMode !== undefined
      ? Effect.zipRight(
        Effect.logWarning(`A result of ${call.app.name} came after the kernel closed, so it is not checkpointed`),
        Effect.suspend(() => this.publish(call, exit))
      )
      : this.published(this.enqueue(entry), call, exit)
  }

  // Publishes the result of a call that ran and queues its checkpoint entry. In task_exit
  // mode the waiters and the caller see it only once it is written.
  settle(call: Call, exit: Exit.Success<unknown, unknown>, claimed = false): Effect.Effect<unknown, unknown, unknown> {
    const withEntry = (entry: EncodedEntry | Warning) => {
      if (entry instanceof Warning) {
        // No entry will end the claim: it is given back (another process runs the body).
        const released = claimed ? this.shared!.release(call.hash) : Effect.void
        return Effect.zipRight(
          Effect.zipRight(Effect.logWarning(entry.message), released),
          Effect.suspend(() => this.publish(call, exit))
        )
      }
      // After the close no pass will write the entry, so no entry will end the claim either.
      if (claimed && this.isClosed() && this.cfg.checkpointMode !== undefined) {
        return Effect.zipRight(
          this.shared!.release(call.hash),
          Effect.suspend(() => this.queueAndPublish(call, entry, exit))
        )
      }
      return this.queueAndPublish(call, entry, exit)
    }
    const entry = resultEntry(call.app, call.hash, call.inputJson, exit.value)
    return Effect.isEffect(entry) ? Effect.flatMap(this.fresh.provide(entry), withEntry) : withEntry(entry)
  }

  // Runs in an uninterruptible region; only the body itself (and waiting) is interruptible.
  // A loaded entry answers the key, else a shared store is asked, else the body runs.
  produce(
    call: Call,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<unknown, unknown, unknown> {
    const shared = this.shared
    if (shared !== undefined) {
      // Claimed at once: under default resume, while the run's keys mostly have no entry
      // (`Shared.claimFirst`), a call that takes a slot without waiting claims its key
      // straight away, and the claim, which looks the key up first, answers with the key's
      // entry when there is one (one statement where a lookup and then a claim were two). A
      // call that would wait for a slot looks the key up first, so that a stored entry is
      // served without one. (A miss to explain is looked up first too.)
      if (shared.claimFirst && this.explainMiss === undefined && this.runner.slotFree()) {
        return this.claimed(call, restore, false, "checkpoint")
      }
      return Effect.matchCauseEffect(restore(shared.find(call.hash)), {
        onFailure: (cause) => this.abandoned(call, cause),
        onSuccess: (entry) =>
          entry === undefined ? this.miss(call, restore) : this.serve(call, entry, restore, "checkpoint")
      })
    }
    const entry = this.loaded.get(call.hash)
    if (entry === undefined) return this.miss(call, restore)
    this.loaded.delete(call.hash)
    return this.serve(call, entry, restore, "checkpoint")
  }

  // An execution that ends without an outcome (interrupted): not memoized, and a waiter runs
  // the body instead.
  private abandoned(call: Call, cause: Cause.Cause<unknown>): Effect.Effect<never, unknown> {
    this.memo.delete(call.memoKey)
    call.flight.done(undefined)
    return Effect.failCause(cause)
  }

  // The body runs: under a claim when the store shares claims, else at once. With
  // explainMisses (`explainMiss` set), the miss is explained first.
  private miss(
    call: Call,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    explained = false
  ): Effect.Effect<unknown, unknown, unknown> {
    if (this.explainMiss !== undefined && !explained) {
      return Effect.zipRight(this.explainMiss(call), Effect.suspend(() => this.miss(call, restore, true)))
    }
    if (this.shared?.claims !== undefined) return this.claimed(call, restore, false)
    const app = call.app
    this.counters.record(app, call.span, "miss")
    // Without retries and slots, the body runs as it is and `running` is kept here
    // (saves an ensuring and a suspend per miss).
    if (this.runner.plain(app)) {
      this.runner.started()
      return this.ran(call, restore(this.runner.bodyOf(app, call.input)), false, true)
    }
    return this.ran(call, this.runner.run(app, call.input, restore), false, false)
  }

  // The outcome of a body: a failure is memoized (never checkpointed), a success settled.
  // `claimed`: the run holds the key's claim, which a failure gives back.
  private ran(
    call: Call,
    body: Effect.Effect<unknown, unknown, unknown>,
    claimed: boolean,
    plainBody: boolean
  ): Effect.Effect<unknown, unknown, unknown> {
    return Effect.matchCauseEffect(body, {
      onFailure: (cause) => {
        if (plainBody) this.runner.ended()
        // Interrupted (a finalizer of the body may have failed too): not memoized.
        const interrupted = Cause.isInterrupted(cause)
        if (!interrupted) this.failedCalls++
        const outcome = () => interrupted ? this.abandoned(call, cause) : this.publish(call, Exit.failCause(cause))
        // A claim the body held is given back first (another process runs the body then).
        return claimed ? Effect.zipRight(this.shared!.release(call.hash), Effect.suspend(outcome)) : outcome()
      },
      onSuccess: (value) => {
        if (plainBody) this.runner.ended()
        return this.settle(call, Exit.succeed(value) as Exit.Success<unknown, unknown>, claimed)
      }
    })
  }

  // Shared store, default resume: once the call holds an execution slot, it claims the key.
  // Won: the body runs (in that slot). Held by another process: the slot is given back while
  // the call waits for the holder's entry (served: outcome remote), or for the claim to end
  // without one (the call claims again, ahead of calls not yet started). An entry the claim
  // finds is served with outcome `found`: `checkpoint` when the call was not looked up first
  // (the claim was its lookup), else `remote` (written since the lookup).
  private claimed(
    call: Call,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    priority: boolean,
    found: "checkpoint" | "remote" = "remote"
  ): Effect.Effect<unknown, unknown, unknown> {
    const shared = this.shared!
    const { app, hash } = call
    // In the slot: the claim, and the body when it is won (its outcome settled after the
    // slot is given back, as for any miss).
    const inSlot = Effect.flatMap(
      shared.claim(hash).pipe(
        Effect.catchAll((e) =>
          Effect.as(
            Effect.logWarning(`Claiming a key failed, so the app runs unclaimed: ${oneLine(e.message)}`),
            "unclaimed" as const
          )
        )
      ),
      (claimed): Effect.Effect<LoadedResult | "held" | BodyRan, never, unknown> => {
        // A claim made without a lookup first counts as one.
        if (found === "checkpoint" && !priority) shared.answered(claimed instanceof LoadedResult)
        // Another process claims the same keys: from now on slots go to waiting calls in
        // no fixed order, so that the processes do not claim in step with each other.
        if (claimed === "held") this.runner.spreadSlots()
        // An entry this call refused already (the store answers with it again) is not served.
        if (claimed instanceof LoadedResult && call.refused) claimed = "unclaimed"
        if (claimed !== "won" && claimed !== "unclaimed") return Effect.succeed(claimed)
        this.counters.record(app, call.span, "miss")
        return Effect.map(
          Effect.exit(this.runner.attempts(app, call.input, restore)),
          (exit) => new BodyRan(exit, claimed === "won")
        )
      }
    )
    return Effect.matchCauseEffect(this.runner.holding(inSlot, restore, priority), {
      // Interrupted while waiting for a slot (no claim taken yet).
      onFailure: (cause) => this.abandoned(call, cause),
      onSuccess: (next): Effect.Effect<unknown, unknown, unknown> => {
        if (next instanceof BodyRan) return this.ran(call, next.exit, next.claimed, false)
        if (next instanceof LoadedResult) return this.serve(call, next, restore, found)
        // Held by another process: wait for its entry without a slot.
        return Effect.matchCauseEffect(restore(shared.await(hash)), {
          onFailure: (cause) =>
            Cause.isInterrupted(cause)
              ? this.abandoned(call, cause)
              : Effect.zipRight(
                Effect.logWarning(
                  `Waiting for another process's claim failed, so the app runs: ${Cause.pretty(cause)}`
                ),
                Effect.suspend(() => this.claimed(call, restore, true))
              ),
          onSuccess: (entry) =>
            entry === undefined ? this.claimed(call, restore, true) : this.serve(call, entry, restore, "remote")
        })
      }
    })
  }

  // The body runs after a stored entry was not served (then a claim that finds it again
  // does not serve it either).
  private refuse(
    call: Call,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<unknown, unknown, unknown> {
    call.refused = true
    return this.miss(call, restore)
  }

  // A loaded (or looked-up) entry answers the call, unless it expired or is refreshed, fails
  // the integrity rule, no longer decodes or cannot be written again: then the body runs.
  private serve(
    call: Call,
    entry: LoadedResult,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    outcome: "checkpoint" | "remote"
  ): Effect.Effect<unknown, unknown, unknown> {
    if (!this.fresh.checks(call.app)) return this.serveValid(call, entry, restore, outcome)
    return Effect.flatMap(this.fresh.refusal(call.app, entry), (refusal) =>
      refusal === undefined
        ? this.serveValid(call, entry, restore, outcome)
        : Effect.zipRight(
          refusal.level === "info" ? Effect.logInfo(refusal.message) : Effect.logDebug(refusal.message),
          Effect.suspend(() => this.refuse(call, restore))
        ))
  }

  // An entry neither expired nor refreshed: served unless it fails the integrity rule, no
  // longer decodes or cannot be written again.
  private serveValid(
    call: Call,
    entry: LoadedResult,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    outcome: "checkpoint" | "remote"
  ): Effect.Effect<unknown, unknown, unknown> {
    const { app, hash } = call
    // Integrity (DESIGN §3): an entry whose hash is not the key of its own app, version and
    // input (edited by hand, damaged, or written by a buggy tool) is never served.
    const problem = entryKeyProblem(entry)
    if (problem !== undefined) {
      return Effect.zipRight(
        Effect.logWarning(
          `A checkpointed entry of ${app.name} (${hash.slice(0, 12)}) is not served, so the app runs again: ${problem}`
        ),
        Effect.suspend(() => this.refuse(call, restore))
      )
    }
    const served = (exit: Exit.Exit<unknown, unknown> | undefined): Effect.Effect<unknown, unknown, unknown> => {
      if (exit === undefined) return this.refuse(call, restore)
      // A shared store under default resume answers every run from the whole runDir: its
      // entries are not copied into this run's checkpoint (one entry per key in all).
      if (this.shared?.carries === false) {
        this.counters.record(app, call.span, outcome)
        return this.publish(call, exit)
      }
      // Carried forward: written to this run's checkpoint like a fresh result, with the
      // call's canonical input. A result that cannot be serialized again (nested too deeply
      // for the serializer) makes the call a miss.
      const result = tryCanonicalJson(entry.result)
      if (typeof result !== "string") {
        return Effect.zipRight(
          Effect.logWarning(
            `A checkpointed result of ${app.name} (${
              hash.slice(0, 12)
            }) cannot be written again (${result.error}), so the app runs again`
          ),
          Effect.suspend(() => this.refuse(call, restore))
        )
      }
      if (this.isClosed() && this.cfg.checkpointMode !== undefined) {
        this.counters.record(app, call.span, outcome)
        return this.queueAndPublish(call, encodedEntry(app, hash, call.inputJson, result, entry.time), exit)
      }
      this.carry(call, result, entry, outcome)
      return this.publish(call, exit)
    }
    // The synchronous decoder first (no effect to run, the common case); the full one when
    // it fails, which may only mean that the schema needs effects (and says why otherwise).
    const decoded = decodeLoadedSync(app, entry)
    return decoded !== undefined
      ? served(decoded)
      : Effect.flatMap(this.fresh.provide(decodeLoaded(app, hash, entry)), served)
  }

  // Carried forward: the entry of a result served from a loaded checkpoint, queued for this
  // run's checkpoint with the call's canonical input. Already durable in the checkpoint it
  // came from, so the caller never waits for this copy, in any mode (task_exit included); it
  // goes with the next pass, at the close at the latest.
  private carry(
    call: Call,
    result: string,
    entry: LoadedResult,
    outcome: "checkpoint" | "remote" = "checkpoint"
  ): void {
    this.counters.record(call.app, call.span, outcome)
    this.checkpointer.enqueueCarried(encodedEntry(call.app, call.hash, call.inputJson, result, entry.time))
    this.counters.notify()
  }

  // The check of the memo and the claim of a missing key happen in one synchronous step,
  // so exactly one of several concurrent callers runs the body; the others wait for it.
  lookup(call: Call): Effect.Effect<unknown, unknown, unknown> {
    // (The mask calls its function when it runs, inside the region: no suspend needed.)
    return Effect.uninterruptibleMask((restore) => {
      const slot = this.memo.get(call.memoKey)
      if (slot === undefined) {
        call.flight = new Flight()
        this.memo.set(call.memoKey, call.flight)
        return this.produce(call, restore)
      }
      if (!(slot instanceof Flight)) {
        this.counters.record(call.app, call.span, "hit")
        return outcomeOf(slot)
      }
      return Effect.flatMap(restore(slot.wait()), (exit) => {
        if (exit === undefined) return this.lookup(call)
        this.counters.record(call.app, call.span, "dedup")
        return exit
      })
    })
  }

  // A call whose input is encoded: the key, then the memo (a hit is served right here).
  keyed(app: AppSpec, span: SpanLike, encoded: unknown, input: unknown): Effect.Effect<unknown, unknown, unknown> {
    if (
      app.ignoreForCache.length > 0 && (typeof encoded !== "object" || encoded === null || Array.isArray(encoded))
    ) {
      return Effect.fail(notAnObject(app))
    }
    const filtered = withoutKeys(encoded, app.ignoreForCache)
    const json = tryCanonicalJson(filtered)
    if (typeof json !== "string") return Effect.fail(noJsonForm(app, json.error))
    // The memo is keyed by the hashed text itself when it is short (a hit then needs no
    // sha256), else by the hash; the two cannot collide (the text starts with "[").
    const text = app.keyPrefix + json + "]"
    const short = text.length <= SHORT_KEY
    const memoKey = short ? text : sha256Hex(text)
    const slot = this.memo.get(memoKey)
    if (slot !== undefined && !(slot instanceof Flight)) {
      if (span !== noSpan) span.attribute("hash", short ? sha256Hex(text) : memoKey)
      this.counters.record(app, span, "hit")
      return outcomeOf(slot)
    }
    const hash = short ? sha256Hex(text) : memoKey
    span.attribute("hash", hash)
    const call = new Call(app, span, memoKey, hash, json, input, NO_FLIGHT)
    if (slot === undefined && this.loaded.size > 0) {
      const entry = this.loaded.get(hash)
      if (entry !== undefined) {
        const served = this.servedFromCheckpoint(call, { text, prefix: app.keyPrefix, input: filtered }, entry)
        if (served !== undefined) return served
      }
    }
    return this.runner.lendSlot(this.lookup(call))
  }

  // A call answered by a loaded entry, served in one synchronous step when it can be (the
  // common case): the entry passes the integrity rule, decodes without effects and
  // serializes again. Then nothing can come between the check of the memo and the memo's
  // answer, so no claim, mask or flight is needed. `undefined`: take the full path
  // (lookup → produce), which also says why an entry is not served.
  servedFromCheckpoint(call: Call, key: KnownKey, entry: LoadedResult): Exit.Exit<unknown, unknown> | undefined {
    const app = call.app
    if (this.isClosed() || entry.app !== app.name || entry.version !== app.version) return undefined
    if (app.expiresAfterMs !== undefined) return undefined
    if (entryKeyProblem(entry, key) !== undefined) return undefined
    const exit = decodeLoadedSync(app, entry)
    if (exit === undefined) return undefined
    const result = tryCanonicalJson(entry.result)
    if (typeof result !== "string") return undefined
    this.loaded.delete(call.hash)
    this.carry(call, result, entry)
    this.memo.set(call.memoKey, slotOf(exit))
    return exit
  }

  // Names (with versions) are unique per kernel: a second app definition under the name and
  // version of one already called would be served the other's entries, typed as its own.
  // The app of the last call is remembered, so a run of calls of one app costs one compare.
  nameTaken(app: AppSpec): AppCacheError | undefined {
    if (app.ignoreProblem !== undefined && app.cache && this.cfg.memoize) {
      return new AppCacheError({ app: app.name, reason: app.ignoreProblem })
    }
    const known = this.appsByKey.get(app.keyPrefix)
    if (known === undefined) this.appsByKey.set(app.keyPrefix, app)
    else if (known !== app) {
      return new AppCacheError({
        app: app.name,
        reason: `Another app named ${app.name} (version ${app.version ?? "null"}) was already called in this run; ` +
          "app names (with versions) must be unique"
      })
    }
    this.lastApp = app
    return undefined
  }

  // Runs when the call's effect runs (from `run`, inside the fiber), so no suspend is needed.
  callWith(app: AppSpec, input: unknown, span: SpanLike): Effect.Effect<unknown, unknown, unknown> {
    if (app !== this.lastApp) {
      const taken = this.nameTaken(app)
      if (taken !== undefined) return Effect.fail(taken)
    }
    this.counters.stats.tasks++
    if (!app.cache || !this.cfg.memoize) {
      this.counters.record(app, span, "miss")
      return this.runner.lendSlot(Effect.uninterruptibleMask((restore) => this.runner.run(app, input, restore)))
    }
    const encoded = app.encodeInputSync(input)
    if (Either.isRight(encoded)) return this.keyed(app, span, encoded.right, input)
    // The synchronous encoder fails for schemas that need effects too: ask the full one.
    return this.fresh.provide(app.encodeInput(input)).pipe(
      Effect.mapError((e) => encodeFailed(app, e)),
      Effect.flatMap((value) => this.keyed(app, span, value, input))
    )
  }

  // A span per call, named after the app, with the attributes app, hash and outcome, when a
  // tracer is installed (with Effect's built-in tracer nobody could see it, so none is made).
  run(app: AppSpec, input: unknown, tracer: Tracer.Tracer): Effect.Effect<unknown, unknown, unknown> {
    return tracer === nativeTracer
      ? this.callWith(app, input, noSpan)
      : Effect.useSpan(
        app.name,
        { attributes: { app: app.name }, captureStackTrace: false },
        (span) => Effect.withParentSpan(Effect.suspend(() => this.callWith(app, input, span)), span)
      )
  }
}
