/**
 * Loaded checkpoint entries, as the kernel keeps them until a call asks for one, and the
 * loading of the listed checkpoints at the kernel's start.
 */
import * as Effect from "effect/Effect"
import type { CheckpointStoreService } from "../CheckpointStore.ts"
import { BadCheckpoint } from "../errors.ts"
import { invalidLoaded } from "./fileLoad.ts"
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
      yield* Effect.logDebug(`Loaded ${plural(count, "entry", "entries")} from ${dir} (${loaded.size - before} new keys)`)
    }
    if (dirs.length > 0) {
      yield* Effect.logInfo(`Loaded ${plural(loaded.size, "result")} from ${plural(dirs.length, "checkpoint")}`)
    }
    return loaded
  })
