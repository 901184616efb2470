/**
 * Explanations of a call's key (DESIGN §8): against stored entries in load order, whether the
 * key is answered (a hit, and by which checkpoint) or not (a miss, with the closest stored
 * entries of the app and what differs). The pure part, which `dfk explain` uses too, and the
 * kernel's `Explainer` (for `Dfk.explain` and `explainMisses`).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { CheckpointEntry, CheckpointStoreService } from "../CheckpointStore.ts"
import type { BadCheckpoint } from "../errors.ts"
import type {
  Asked,
  Candidate,
  Difference,
  ExplainOptions,
  Explanation,
  ExplanationMiss,
  StoredEntry
} from "../Explanation.ts"
import { entryKeyProblem, tryCanonicalJson } from "./canonical.ts"
import { oneLine } from "./messages.ts"

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const member = (path: string, key: string) => IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

const textOf = (v: unknown): string => {
  const json = tryCanonicalJson(v)
  return typeof json === "string" ? json : String(v)
}

/** Whether a value is the encoded form of `File.Content` or `File.Stat`. */
const isFileForm = (v: unknown): v is { readonly path: string } => {
  if (!isPlainObject(v) || typeof v.path !== "string") return false
  const keys = Object.keys(v).sort().join(",")
  return keys === "path,sha256" || keys === "mtimeMs,path,size"
}

/** The expiry of `options`: its limit in milliseconds and now, or `undefined` when none. */
const expiryOf = (options: ExplainOptions | undefined) => {
  if (options?.expiresAfter === undefined) return undefined
  const limit = Duration.decode(options.expiresAfter)
  return { ms: Duration.toMillis(limit), text: Duration.format(limit), now: options.now ?? Date.now() }
}
type Expiry = ReturnType<typeof expiryOf>

/** Whether an entry written at `time` is older than the expiry (an unreadable time is). */
const isExpired = (expiry: Expiry, time: string): boolean => {
  if (expiry === undefined) return false
  const written = Date.parse(time)
  return Number.isNaN(written) || expiry.now - written > expiry.ms
}

/**
 * The differences between a stored input and an asked one, down through nested objects
 * (arrays and other values are compared whole, as canonical JSON). Paths start at `input`.
 */
export const diffInputs = (stored: unknown, asked: unknown, path = "input"): Array<Difference> => {
  // A file of the key (File.Content's `{ path, sha256 }`, File.Stat's `{ path, size, mtimeMs }`)
  // whose bytes or stat changed: said as a file that changed.
  if (isFileForm(stored) && isFileForm(asked) && stored.path === asked.path) {
    return textOf(stored) === textOf(asked) ? [] : [{ _tag: "FileChanged", path: stored.path, stored, actual: asked }]
  }
  if (isPlainObject(stored) && isPlainObject(asked)) {
    const keys = [...new Set([...Object.keys(stored), ...Object.keys(asked)])].sort()
    const out: Array<Difference> = []
    for (const k of keys) {
      const inStored = Object.hasOwn(stored, k) && stored[k] !== undefined
      const inAsked = Object.hasOwn(asked, k) && asked[k] !== undefined
      const p = member(path, k)
      if (inStored && !inAsked) out.push({ _tag: "MissingKey", path: p, stored: stored[k] })
      else if (!inStored && inAsked) out.push({ _tag: "ExtraKey", path: p, asked: asked[k] })
      else if (inStored && inAsked) {
        for (const d of diffInputs(stored[k], asked[k], p)) out.push(d)
      }
    }
    return out
  }
  return textOf(stored) === textOf(asked) ? [] : [{ _tag: "Changed", path, stored, asked }]
}

/** What one key of the app came to in the stored entries: its last entry, and its last live one. */
interface KeyState {
  last: StoredEntry
  live: StoredEntry | undefined
  /** The checkpoints holding live entries of it, in load order. */
  holders: Array<string>
}

/** The states of the stored keys of one app, in load order (the last entry of a key wins). */
const keyStates = (app: string, entries: Iterable<StoredEntry>): Map<string, KeyState> => {
  const states = new Map<string, KeyState>()
  for (const stored of entries) {
    const e = stored.entry
    if (e.app !== app) continue
    let state = states.get(e.hash)
    if (state === undefined) states.set(e.hash, state = { last: stored, live: undefined, holders: [] })
    state.last = stored
    if (e.deleted !== true) {
      state.live = stored
      if (!state.holders.includes(stored.checkpoint)) state.holders.push(stored.checkpoint)
    }
  }
  return states
}

/** A stored key as a candidate, with every difference from the asked call. */
const candidateOf = (asked: Asked, state: KeyState, expiry: Expiry): Candidate => {
  const shown = state.live ?? state.last
  const e = shown.entry
  const differences: Array<Difference> = []
  if (e.version !== asked.version) differences.push({ _tag: "Version", stored: e.version, asked: asked.version })
  for (const d of diffInputs(e.input, asked.input)) differences.push(d)
  if (state.last.entry.deleted === true) {
    differences.push({ _tag: "Tombstoned", checkpoint: state.last.checkpoint, time: state.last.entry.time })
  } else if (isExpired(expiry, e.time)) differences.push({ _tag: "Expired", time: e.time, expiresAfter: expiry!.text })
  return {
    hash: e.hash,
    checkpoint: shown.checkpoint,
    time: e.time,
    version: e.version,
    input: e.input,
    result: e.deleted === true ? undefined : e.result,
    differences
  }
}

const newestFirst = (a: Candidate, b: Candidate) => a.time < b.time ? 1 : a.time > b.time ? -1 : 0

/**
 * Explains the key of `asked` against `entries` (in load order: for a repeated key the last
 * entry wins): a hit when the key's last entry is a result whose hash is its own key, else a
 * miss with the `closest` (default 3) stored keys of the app, the asked key first when it is
 * stored (tombstoned, or damaged), then the fewest differences, then the newest.
 */
export const explainEntries = (
  asked: Asked,
  entries: Iterable<StoredEntry>,
  options?: ExplainOptions
): Explanation => {
  const states = keyStates(asked.app, entries)
  const own = states.get(asked.key)
  const expiry = expiryOf(options)
  const base = { key: asked.key, app: asked.app, version: asked.version, input: asked.input }
  if (
    own !== undefined && own.last.entry.deleted !== true && entryKeyProblem(own.last.entry) === undefined &&
    !isExpired(expiry, own.last.entry.time)
  ) {
    return {
      _tag: "Hit",
      ...base,
      checkpoint: own.last.checkpoint,
      time: own.last.entry.time,
      result: own.last.entry.result,
      alsoIn: own.holders.filter((c) => c !== own.last.checkpoint)
    }
  }
  const limit = options?.closest ?? 3
  let live = 0
  for (const state of states.values()) if (state.last.entry.deleted !== true) live++
  const all = [...states.values()].map((state) => candidateOf(asked, state, expiry))
  all.sort((a, b) =>
    Number(b.hash === asked.key) - Number(a.hash === asked.key) ||
    a.differences.length - b.differences.length ||
    newestFirst(a, b)
  )
  // The integrity rule only for the candidates shown (a sha256 each).
  const closest = all.slice(0, Math.max(0, limit)).map((c): Candidate => {
    const stored = { hash: c.hash, app: asked.app, version: c.version, input: c.input }
    const problem = entryKeyProblem(stored)
    return problem === undefined
      ? c
      : { ...c, differences: [...c.differences, { _tag: "HashMismatch", reason: problem }] }
  })
  return { _tag: "Miss", ...base, stored: live, closest } satisfies ExplanationMiss
}

const preview = (value: unknown, max = 60): string => {
  const text = oneLine(textOf(value))
  return text.length <= max ? text : text.slice(0, max - 1) + "…"
}

/** One line describing a difference. */
export const describeDifference = (d: Difference): string => {
  switch (d._tag) {
    case "Version":
      return `version: stored ${JSON.stringify(d.stored)}, asked ${JSON.stringify(d.asked)}`
    case "MissingKey":
      return `${d.path}: missing from the asked input (stored ${preview(d.stored)})`
    case "ExtraKey":
      return `${d.path}: extra in the asked input (asked ${preview(d.asked)}, not in the stored input)`
    case "Changed":
      return `${d.path}: changed: stored ${preview(d.stored)}, asked ${preview(d.asked)}`
    case "Tombstoned":
      return `invalidated by a tombstone in ${d.checkpoint} (${d.time})`
    case "Expired":
      return `expired: computed ${d.time}, older than ${d.expiresAfter}`
    case "FileChanged":
      return `${d.path}: the file changed: stored ${preview(d.stored)}, now ${preview(d.actual)}`
    case "HashMismatch":
      return `the stored hash does not match its app, version and input: the entry was edited or damaged`
    case "Undecodable":
      return `the stored result no longer decodes with the output schema: ${oneLine(d.reason)}`
  }
}

/** An explanation in one line, for a log. */
export const describeExplanation = (x: Explanation): string => {
  const head = `${x.app} (key ${x.key.slice(0, 12)})`
  if (x._tag === "Hit") return `Hit: ${head} is stored in ${x.checkpoint ?? "this run's memo"}`
  if (x.closest.length === 0) return `Miss: ${head}: no stored entry of the app`
  const c = x.closest[0]!
  const what = c.differences.length === 0 ? "no visible difference" : c.differences.map(describeDifference).join("; ")
  return `Miss: ${head}: the closest of ${x.stored} stored ${x.stored === 1 ? "entry" : "entries"} of the app (${
    c.hash.slice(0, 12)
  } in ${c.checkpoint}, ${c.time}) differs: ${what}`
}

/**
 * The stored entries a kernel can see, read through its store: the checkpoints it resumes
 * from (`dirs`, read when asked) and its own. For `Dfk.explain` (read each time) and for
 * `explainMisses` (read once, at the first miss explained, and again after an invalidation).
 */
export class Explainer {
  private cached: Effect.Effect<ReadonlyArray<StoredEntry>, BadCheckpoint> | undefined
  constructor(
    private readonly store: CheckpointStoreService,
    /** The checkpoints to read, in load order (this run's own last). */
    private readonly dirs: Effect.Effect<ReadonlyArray<string>>
  ) {}

  /** Every stored entry, now, in load order. */
  readonly read: Effect.Effect<ReadonlyArray<StoredEntry>, BadCheckpoint> = Effect.suspend(() =>
    Effect.flatMap(this.dirs, (dirs) =>
      Effect.gen(this, function*() {
        const out: Array<StoredEntry> = []
        for (const checkpoint of dirs) {
          if (!(yield* this.store.exists(checkpoint))) continue
          yield* this.store.load(checkpoint, (entry: CheckpointEntry) => {
            out.push({ entry, checkpoint })
          })
        }
        return out
      }))
  )

  /** The entries read once (for the misses explained), until `forget`. */
  get entries(): Effect.Effect<ReadonlyArray<StoredEntry>, BadCheckpoint> {
    return this.cached ??= Effect.runSync(Effect.cached(this.read))
  }

  /** Reads the entries again at the next miss explained (after an invalidation). */
  forget(): void {
    this.cached = undefined
  }

  /** Logs the explanation of a miss at info level, when the app has stored entries. */
  logMiss(asked: Asked): Effect.Effect<void> {
    return Effect.flatMap(this.entries, (entries) => {
      if (!entries.some((e) => e.entry.app === asked.app)) return Effect.void
      return Effect.logInfo(describeExplanation(explainEntries(asked, entries, { closest: 1 })))
    }).pipe(
      Effect.catchAll((e) => Effect.logWarning(`A miss cannot be explained: ${oneLine(e.message)}`))
    )
  }
}
