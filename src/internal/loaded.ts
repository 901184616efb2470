/**
 * Loaded checkpoint entries, as the kernel keeps them until a call asks for one, and the
 * loading of the listed checkpoints at the kernel's start.
 */
import * as Effect from "effect/Effect"
import type { CheckpointStoreService } from "../CheckpointStore.ts"
import { BadCheckpoint } from "../errors.ts"
import { plural } from "./messages.ts"

/**
 * A loaded checkpoint entry, as the kernel keeps it: its result and time, and what its hash
 * must be the key of (app, version, input), checked when it is first served.
 */
export class LoadedResult {
  constructor(
    readonly hash: string,
    readonly result: unknown,
    readonly time: string,
    readonly app: string,
    readonly version: string | null,
    readonly input: unknown
  ) {}
}

/**
 * One string per distinct app name and version among loaded entries, rather than one per
 * entry (JSON.parse makes a new string for each value).
 */
export class Interned {
  private readonly strings = new Map<string, string>()
  of<S extends string | null>(s: S): S {
    if (s === null) return s
    const known = this.strings.get(s)
    if (known !== undefined) return known as S
    this.strings.set(s, s)
    return s
  }
}

/**
 * Checks what the kernel needs of an entry handed over by a store other than the built-in
 * one (which checks its lines whole): a hash to look it up by, the app, version and input
 * whose key the hash must be (checked when it is served), a result, and the time it writes
 * again when it carries the result forward. Returns the reason when one is missing.
 */
export const invalidLoaded = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null) return "the entry is not an object"
  const o = value as Record<string, unknown>
  if (typeof o.hash !== "string") return "\"hash\" is not a string"
  if (typeof o.app !== "string") return "\"app\" is not a string"
  if (o.version !== null && typeof o.version !== "string") return "\"version\" is neither a string nor null"
  if (o.input === undefined) return "the entry has no \"input\""
  if (o.deleted !== undefined && o.deleted !== true) return "\"deleted\" is neither true nor absent"
  if (o.result === undefined && o.deleted !== true) return "the entry has no \"result\""
  if (typeof o.time !== "string") return "\"time\" is not a string"
  return undefined
}

/**
 * Loads every entry of `dirs` from `store`, in list order (for a repeated key, the last entry
 * read wins). With `checkEntries` (a store other than the built-in one, which checks every
 * line it reads), each entry is checked for what the kernel uses of it, so that a malformed
 * one is a BadCheckpoint now rather than a corrupt line later. Entries a store hands over
 * after its `load` returned are outside the store contract: ignored.
 */
export const loadAll = (
  store: CheckpointStoreService,
  dirs: ReadonlyArray<string>,
  checkEntries: boolean
): Effect.Effect<Map<string, LoadedResult>, BadCheckpoint> =>
  Effect.gen(function*() {
    const loaded = new Map<string, LoadedResult>()
    const interned = new Interned()
    for (const dir of dirs) {
      const before = loaded.size
      let count = 0
      let bad: BadCheckpoint | undefined
      let open = true
      yield* store.load(dir, (entry) => {
        if (!open) return
        count++
        if (checkEntries) {
          if (bad !== undefined) return
          const invalid = invalidLoaded(entry)
          if (invalid !== undefined) {
            bad = new BadCheckpoint({ path: dir, line: count, reason: `Entry ${count} of the store: ${invalid}` })
            return
          }
        }
        // A tombstone invalidates its key (the last entry of a key wins).
        if (entry.deleted === true) {
          loaded.delete(entry.hash)
          return
        }
        loaded.set(
          entry.hash,
          new LoadedResult(
            entry.hash,
            entry.result,
            entry.time,
            interned.of(entry.app),
            interned.of(entry.version),
            entry.input
          )
        )
      })
      open = false
      if (bad !== undefined) return yield* bad
      yield* Effect.logDebug(
        `Loaded ${plural(count, "entry", "entries")} from ${dir} (${loaded.size - before} new keys)`
      )
    }
    if (dirs.length > 0) {
      yield* Effect.logInfo(`Loaded ${plural(loaded.size, "result")} from ${plural(dirs.length, "checkpoint")}`)
    }
    return loaded
  })
