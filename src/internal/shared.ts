/**
 * Resuming from a store that answers lookups on demand (a shared SQL store, DESIGN §7): the
 * kernel asks for the keys its calls need, the concurrent asks of one moment batched into one
 * lookup, and, under default resume with a store that has claims, claims a key before its
 * body runs and waits for the key's holder when another process has it.
 */
import * as Effect from "effect/Effect"
import type { CheckpointEntry, CheckpointStoreService, LookupScope, StoreClaims } from "../CheckpointStore.ts"
import type { CheckpointError } from "../errors.ts"
import type { ResolvedConfig } from "./config.ts"
import { invalidLoaded, LoadedResult } from "./loaded.ts"
import { oneLine, reasonOf } from "./messages.ts"

/** An answer to a lookup: the entry, none, or why the store could not say. */
type Answer = LoadedResult | undefined | { readonly error: string }

/** What a claim came to: run the body, wait for the holder, or the entry that answers the key. */
export type Claimed = "won" | "held" | LoadedResult

/** One ask of a lookup batch: answered once, whether its fiber waits already or not yet. */
class Ask {
  private value: { readonly answer: Answer } | undefined
  private resume: ((effect: Effect.Effect<Answer>) => void) | undefined
  answer(answer: Answer): void {
    this.value = { answer }
    this.resume?.(Effect.succeed(answer))
  }
  readonly answered: Effect.Effect<Answer> = Effect.async<Answer>((resume) => {
    if (this.value !== undefined) return resume(Effect.succeed(this.value.answer))
    this.resume = resume
  })
}

/** The resume of one kernel from a store with lookups. */
export class Shared {
  private batch: Map<string, Array<Ask>> | undefined
  /**
   * How often the keys asked about lately had an entry: a moving average over keys, from 1.
   * Under default resume, a run whose keys mostly have none claims them without a lookup
   * first (`claimFirst`): the claim looks the key up itself, and one statement does what a
   * lookup and a claim did in two. A run that finds entries (a rerun) looks them up first,
   * so that a stored entry is served without a slot, a claim or a write.
   */
  private found = 1
  /**
   * Whether served entries are carried forward into this run's checkpoint: from listed
   * checkpoints yes (as with files, so that the last checkpoint alone holds everything);
   * under default resume no, since every run looks in the whole runDir.
   */
  readonly carries: boolean

  constructor(
    private readonly store: CheckpointStoreService & { readonly lookup: NonNullable<CheckpointStoreService["lookup"]> },
    readonly scope: LookupScope,
    /** The store's claims, under default resume; `undefined`: nothing is claimed. */
    readonly claims: StoreClaims | undefined,
    /** This run (`<runDir>/<NNN>`): the owner of the kernel's claims. */
    readonly run: string,
    /** The namespace of the claims: the kernel's `runDir`. */
    readonly runDir: string
  ) {
    this.carries = scope._tag === "Dirs"
  }

  /** Whether a call that can take a slot at once should claim its key without a lookup first. */
  get claimFirst(): boolean {
    return this.claims !== undefined && this.found < 0.5
  }

  /** Counts a key asked about (by a lookup, or by a claim made without one) as found or not. */
  answered(found: boolean): void {
    this.found += ((found ? 1 : 0) - this.found) / 16
  }

  /**
   * The entry of `hash` in the store now (`undefined`: none). Asks made while a lookup is
   * being gathered join it: one query for all of them. A failed lookup is a warning and a
   * miss.
   */
  find(hash: string): Effect.Effect<LoadedResult | undefined> {
    return Effect.suspend(() => {
      let start: Effect.Effect<unknown> = Effect.void
      let batch = this.batch
      if (batch === undefined) {
        batch = this.batch = new Map()
        // Gathered until the fibers that run now have had their turn.
        start = Effect.forkDaemon(Effect.zipRight(Effect.yieldNow(), Effect.suspend(() => this.flush())))
      }
      const ask = new Ask()
      const list = batch.get(hash)
      if (list === undefined) batch.set(hash, [ask])
      else list.push(ask)
      return Effect.zipRight(start, ask.answered)
    }).pipe(
      Effect.flatMap((answer) =>
        answer === undefined || answer instanceof LoadedResult
          ? Effect.succeed(answer)
          : Effect.as(
            Effect.logWarning(`A lookup in the checkpoint store failed, so the app runs: ${answer.error}`),
            undefined
          )
      )
    )
  }

  private flush(): Effect.Effect<void> {
    const batch = this.batch
    this.batch = undefined
    if (batch === undefined || batch.size === 0) return Effect.void
    const hashes = [...batch.keys()]
    return this.store.lookup(this.scope, hashes).pipe(
      Effect.match({
        onFailure: (e): ReadonlyArray<Answer> => hashes.map(() => ({ error: oneLine(e.message) })),
        onSuccess: (entries): ReadonlyArray<Answer> => entries.map(loadedOf)
      }),
      Effect.catchAllCause((cause) => Effect.succeed(hashes.map((): Answer => ({ error: reasonOf(cause) })))),
      Effect.map((answers) => {
        hashes.forEach((hash, i) => {
          const answer = answers[i]
          this.answered(answer instanceof LoadedResult)
          for (const ask of batch.get(hash)!) ask.answer(answer)
        })
      })
    )
  }

  /**
   * Claims `hash` for this run (see `StoreClaims.claim`). A malformed entry is no answer: the
   * body runs, unclaimed. (An entry the call turns away when served, failing the integrity
   * rule, expired or refreshed, is not served again when a claim finds it: `Call.refused`.)
   */
  claim(hash: string): Effect.Effect<Claimed, CheckpointError> {
    return Effect.map(this.claims!.claim(this.runDir, hash, this.run), (claimed): Claimed => {
      if (claimed === "won" || claimed === "held") return claimed
      const loaded = loadedOf(claimed)
      return loaded instanceof LoadedResult ? loaded : "won"
    })
  }

  /** Waits for the holder of `hash`'s claim: its entry, or `undefined` (claim again). */
  await(hash: string): Effect.Effect<LoadedResult | undefined, CheckpointError> {
    return Effect.map(this.claims!.await(this.runDir, hash), (entry) => {
      if (entry === undefined) return undefined
      const loaded = loadedOf(entry)
      return loaded instanceof LoadedResult ? loaded : undefined
    })
  }

  /** Gives up this run's claim on `hash` (its body failed, was interrupted, or its result cannot be checkpointed). */
  release(hash: string): Effect.Effect<void> {
    return this.claims!.release(this.runDir, [hash], this.run).pipe(
      Effect.catchAll((e) =>
        Effect.logWarning(
          `Releasing a claim failed; another process takes it over when its lease ends: ${oneLine(e.message)}`
        )
      )
    )
  }
}

/** An entry as the kernel keeps it, or why it cannot be used. */
const loadedOf = (entry: CheckpointEntry | undefined): Answer => {
  // (A tombstone answers nothing: its key has no entry.)
  if (entry === undefined || entry.deleted === true) return undefined
  const invalid = invalidLoaded(entry)
  if (invalid !== undefined) return { error: `a malformed entry: ${invalid}` }
  return new LoadedResult(entry.hash, entry.result, entry.time, entry.app, entry.version, entry.input)
}

/**
 * How a kernel resumes from a store with lookups: from the listed checkpoints (`files`,
 * nothing claimed), or under default resume with a checkpoint mode from every run under
 * `runDir`, live ones included, with the store's claims; `undefined`: from nothing.
 */
export const sharedResume = (
  store: CheckpointStoreService,
  files: ReadonlyArray<string> | undefined,
  cfg: ResolvedConfig,
  run: string
): Shared | undefined => {
  const lookup = store.lookup
  if (lookup === undefined) return undefined
  const withLookup = { ...store, lookup }
  if (files !== undefined) {
    return files.length === 0
      ? undefined
      : new Shared(withLookup, { _tag: "Dirs", dirs: files }, undefined, run, cfg.runDir)
  }
  if (cfg.checkpointMode === undefined) return undefined
  return new Shared(withLookup, { _tag: "RunDir", runDir: cfg.runDir }, store.claims, run, cfg.runDir)
}
