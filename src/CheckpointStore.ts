/**
 * Where checkpoint entries live. The kernel appends entries and loads them only through
 * this service, so other stores (SQLite, PostgreSQL, …) can be added as layers without
 * touching apps or the kernel. The default is the JSON Lines files of `layerFileSystem`.
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { BadCheckpoint } from "./errors.ts"
import type { CheckpointError } from "./errors.ts"
import * as fileStore from "./internal/fileStore.ts"
import { normalRunDir, runPath } from "./internal/runNames.ts"

/**
 * One memoized result, as stored: the line
 * `{"v":1,"hash":…,"app":…,"version":…,"input":…,"result":…,"time":…}` of `tasks.jsonl`;
 * or a tombstone (`deleted: true`, no `result`), the line
 * `{"v":1,"hash":…,"app":…,"version":…,"input":…,"deleted":true,"time":…}`, which
 * invalidates the key: the last entry of a key wins, so after a tombstone a call misses.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointEntry {
  /** The memo key: lowercase hex sha256. */
  readonly hash: string
  /** The app's name. */
  readonly app: string
  /** The app's version, or `null`. */
  readonly version: string | null
  /** The encoded input that went into the key (without the `ignoreForCache` keys). */
  readonly input: unknown
  /** The result, encoded with the app's `output` schema (`undefined` in a tombstone). */
  readonly result: unknown
  /** When the result was computed (a tombstone: when it was written), ISO-8601. */
  readonly time: string
  /**
   * `true`: a tombstone, which invalidates the key (it has no `result`). A store hands
   * tombstones to `load` as it holds them, and a `lookup` whose last entry of a hash is a
   * tombstone answers `undefined` (no entry).
   * @since 0.2.0
   */
  readonly deleted?: true | undefined
}

/**
 * Options of one append.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  /**
   * `"fsync"`: the append returns only once the entries are on stable storage (survives a
   * power loss); `"none"`: once the operating system has them (survives a process crash).
   * Default `"none"`.
   */
  readonly durability?: Durability | undefined
}

/**
 * How far a checkpoint write goes before it counts as done: `"none"` (the OS has it) or
 * `"fsync"` (the disk has it).
 *
 * @since 0.1.0
 * @category models
 */
export type Durability = "none" | "fsync"

/**
 * An entry whose input and result are JSON text: the canonical JSON of the encoded input
 * (the text its memo key was computed from) and the JSON of the encoded result. The kernel
 * hands its entries to a store's `appendEncoded` in this form, so that a store that keeps
 * JSON text (the JSON Lines files, a SQL table) writes them as they are, with no parse and
 * no second serialization.
 *
 * @since 0.2.0
 * @category models
 */
export interface EncodedEntry {
  /** The memo key: lowercase hex sha256. */
  readonly hash: string
  /** The app's name. */
  readonly app: string
  /** The app's version, or `null`. */
  readonly version: string | null
  /** The encoded input as canonical JSON text (without the `ignoreForCache` keys). */
  readonly input: string
  /** The result, encoded with the app's `output` schema, as JSON text (ignored in a tombstone). */
  readonly result: string
  /** When the result was computed (a tombstone: when it was written), ISO-8601. */
  readonly time: string
  /**
   * `true`: a tombstone (see `CheckpointEntry.deleted`); its `result` is ignored.
   * @since 0.2.0
   */
  readonly deleted?: true | undefined
}

/**
 * Where a store keeps its runs. A run is named `<runDir>/<NNN>` (`000`, `001`, …, `999`,
 * `1000`); its checkpoint is `<run>/checkpoint`. A store without `runs` keeps them as folders
 * made through the platform's `FileSystem`.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreRuns {
  /** The runs under `runDir`, oldest first, as paths such as `runinfo/003`. */
  readonly list: (runDir: string) => Effect.Effect<ReadonlyArray<string>>
  /**
   * Makes the next run under `runDir` and returns its path. Atomic: two processes that
   * allocate at once get two runs.
   */
  readonly allocate: (runDir: string) => Effect.Effect<string, CheckpointError>
}

/**
 * Where a lookup looks: the listed checkpoint dirs in order (for a repeated key the last one
 * wins, as when they are loaded), or every run under a `runDir` at the time of the lookup,
 * runs that are running now included.
 *
 * @since 0.2.0
 * @category models
 */
export type LookupScope =
  | { readonly _tag: "Dirs"; readonly dirs: ReadonlyArray<string> }
  | { readonly _tag: "RunDir"; readonly runDir: string }

/**
 * Claims on keys, shared by every process that uses the store (DESIGN §7): before a body runs
 * for a key that no entry answers, the kernel claims the key, so that one process in all runs
 * it and the others wait for its entry.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreClaims {
  /**
   * Claims `hash` under `runDir` for the run `run` (e.g. `runinfo/003`): `"won"` when the
   * caller is to run the body (the claim ends when `run` writes an entry for `hash`, or with
   * `release`), `"held"` when a live holder has it, or the entry that answers the key when
   * one was written meanwhile.
   */
  readonly claim: (
    runDir: string,
    hash: string,
    run: string
  ) => Effect.Effect<"won" | "held" | CheckpointEntry, CheckpointError>
  /**
   * Waits until `hash` has an entry under `runDir` (returns it), or until its claim is
   * released or its holder stopped renewing it (returns `undefined`: claim it again).
   */
  readonly await: (runDir: string, hash: string) => Effect.Effect<CheckpointEntry | undefined, CheckpointError>
  /** Releases the claims of `run` on `hashes`, with no entry written (a failure, an interruption). */
  readonly release: (runDir: string, hashes: ReadonlyArray<string>, run: string) => Effect.Effect<void, CheckpointError>
}

/**
 * A batch of entries taken off a `StoreQueue`, to be written by it.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreBatch {
  /** How many entries it holds. */
  readonly count: number
}

/**
 * A queue of entries waiting to be written to one checkpoint dir, kept in a store's own form:
 * a store that provides one does, when an entry is queued, the work that writing it needs
 * (the JSON Lines store: the line, encoded as UTF-8 into 1 MiB slabs), so that a checkpoint
 * pass only writes what is ready. The kernel queues entries in order, takes them all for a
 * pass, writes the batch, and gives a failed batch back.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreQueue {
  /** How many entries are queued (taken batches not counted). */
  readonly size: number
  /** Queues an entry. */
  readonly push: (entry: EncodedEntry) => void
  /** Takes every queued entry. */
  readonly take: () => StoreBatch
  /** Writes a batch taken off this queue, in order; like `append`, it says how many it stored when it fails part-way. */
  readonly write: (batch: StoreBatch) => Effect.Effect<void, CheckpointError>
  /**
   * Puts a batch back in front of whatever was queued since it was taken, less its first
   * `written` entries (which a failed write stored all the same).
   */
  readonly putBack: (batch: StoreBatch, written: number) => void
}

/**
 * The operations a checkpoint store provides. `dir` is a checkpoint directory such as
 * `runinfo/003/checkpoint`. `append`, `load` and `exists` are required; the others are what
 * a store may add: entries as JSON text, its own runs, lookups on demand and claims.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointStoreService {
  /** Appends entries to the checkpoint in `dir`, creating it (even with no entries). */
  readonly append: (
    dir: string,
    entries: ReadonlyArray<CheckpointEntry>,
    options?: AppendOptions
  ) => Effect.Effect<void, CheckpointError>
  /**
   * Appends entries given as JSON text (see `EncodedEntry`), like `append`. When a store has
   * it, the kernel writes through it; otherwise through `append`, with the texts parsed.
   * @since 0.2.0
   */
  readonly appendEncoded?: (
    dir: string,
    entries: ReadonlyArray<EncodedEntry>,
    options?: AppendOptions
  ) => Effect.Effect<void, CheckpointError>
  /**
   * A queue for the entries of the checkpoint in `dir` (see `StoreQueue`). When a store has
   * it, the kernel queues its entries there; otherwise in a queue of its own, written with
   * `appendEncoded` or `append`.
   * @since 0.2.0
   */
  readonly queue?: (dir: string, options: AppendOptions) => StoreQueue
  /** Hands every entry of the checkpoint in `dir` to `onEntry`, in stored order. */
  readonly load: (dir: string, onEntry: (entry: CheckpointEntry) => void) => Effect.Effect<void, BadCheckpoint>
  /** Whether `dir` holds a checkpoint. */
  readonly exists: (dir: string) => Effect.Effect<boolean>
  /**
   * Whether `load` checks every entry it hands over (the JSON Lines store checks each line
   * against the format). Default `false`: the kernel checks each loaded entry for the fields
   * it uses.
   * @since 0.2.0
   */
  readonly checksEntries?: boolean
  /**
   * Where runs live. Default: folders made through the platform's `FileSystem`.
   * @since 0.2.0
   */
  readonly runs?: StoreRuns
  /**
   * Lookups on demand: when a store has it, the kernel loads nothing at its start and asks
   * for the keys its calls need, several at a time; the answers, one per hash (`undefined`:
   * none), are those a load of the same scope would give. Default: the kernel loads the
   * checkpoints it resumes from when it starts.
   * @since 0.2.0
   */
  readonly lookup?: (
    scope: LookupScope,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<CheckpointEntry | undefined>, BadCheckpoint>
  /**
   * Claims shared across processes (DESIGN §7), used under default resume. Default: none
   * (no claims; in-process dedup only).
   * @since 0.2.0
   */
  readonly claims?: StoreClaims
}

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const CheckpointStoreBase: Context.TagClass<CheckpointStore, "effect-dfk/CheckpointStore", CheckpointStoreService> =
  Context.Tag("effect-dfk/CheckpointStore")<CheckpointStore, CheckpointStoreService>()

/**
 * The checkpoint store service. When none is provided, the kernel uses the JSON Lines
 * files of `CheckpointStore.layerFileSystem`.
 *
 * @example Keeping checkpoints in memory for a test
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { App, CheckpointFiles, CheckpointStore, Dfk } from "effect-dfk"
 *
 * const double = App.make(
 *   { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) => Effect.succeed(x * 2)
 * )
 *
 * const program = double(21).pipe(
 *   Effect.provide(Dfk.layer({ runDir: "/tmp/effect-dfk-doc-store", checkpointMode: "task_exit" })),
 *   Effect.provide(CheckpointFiles.none),
 *   Effect.provide(CheckpointStore.layerMemory),
 *   Effect.provide(NodeContext.layer)
 * )
 * console.assert((await Effect.runPromise(program)) === 42)
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class CheckpointStore extends CheckpointStoreBase {
  /**
   * The default store: `<dir>/tasks.jsonl`, UTF-8 JSON Lines, appended, through the
   * platform's `FileSystem`. A torn last line is skipped with a warning. Each file it writes
   * stays open for appending until the layer closes.
   *
   * @example Appending and loading entries directly
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import * as path from "node:path"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect } from "effect"
   * import { CheckpointStore, Memo } from "effect-dfk"
   * import type { CheckpointEntry } from "effect-dfk"
   *
   * const hash = Effect.runSync(Memo.key({ name: "square", input: 3 }))
   * const entry: CheckpointEntry = { hash, app: "square", version: null, input: 3, result: 9, time: new Date(0).toISOString() }
   *
   * const roundTrip = (dir: string) =>
   *   Effect.gen(function* () {
   *     const store = yield* CheckpointStore
   *     yield* store.append(dir, [entry])
   *     const loaded: Array<CheckpointEntry> = []
   *     yield* store.load(dir, (e) => {
   *       loaded.push(e)
   *     })
   *     return { exists: yield* store.exists(dir), loaded }
   *   }).pipe(Effect.provide(CheckpointStore.layerFileSystem))
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const dir = path.join(yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-store-fs-" }), "checkpoint")
   *   const { exists, loaded } = yield* roundTrip(dir)
   *   console.assert(exists && loaded.length === 1 && loaded[0]!.hash === hash && loaded[0]!.result === 9)
   *   // On disk: one JSON line in <dir>/tasks.jsonl.
   *   const line = JSON.parse(yield* fs.readFileString(path.join(dir, "tasks.jsonl")))
   *   console.assert(line.v === 1 && line.app === "square" && line.result === 9)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerFileSystem: Layer.Layer<CheckpointStore, never, FileSystem.FileSystem | Path.Path> = Layer
    .scoped(CheckpointStore, fileStore.make)

  /**
   * A store that keeps entries in memory, for tests. Each layer build starts empty.
   *
   * @example Checkpoints that never touch the disk
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import * as path from "node:path"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, CheckpointStore, Dfk } from "effect-dfk"
   *
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x * x)
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-store-memory-" })
   *   const { checkpointDir, stored } = yield* Effect.gen(function* () {
   *     yield* square(3)
   *     const { checkpointDir } = yield* Dfk
   *     const store = yield* CheckpointStore
   *     return { checkpointDir, stored: yield* store.exists(checkpointDir) }
   *   }).pipe(
   *     Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
   *     Effect.provide(CheckpointStore.layerMemory)
   *   )
   *   console.assert(stored && !(yield* fs.exists(path.join(checkpointDir, "tasks.jsonl"))))
   *   // Each build of the layer starts empty.
   *   const again = CheckpointStore.pipe(
   *     Effect.flatMap((store) => store.exists(checkpointDir)),
   *     Effect.provide(CheckpointStore.layerMemory)
   *   )
   *   console.assert((yield* again) === false)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly layerMemory: Layer.Layer<CheckpointStore> = Layer.sync(CheckpointStore, makeMemory)

  /**
   * Makes an in-memory store (the service behind `layerMemory`).
   *
   * @example One memory store shared by two runs
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Layer, Schema } from "effect"
   * import { App, CheckpointFiles, CheckpointStore, Dfk } from "effect-dfk"
   * import type { CheckpointEntry } from "effect-dfk"
   *
   * const store = CheckpointStore.makeMemory()
   * const storeLayer = Layer.succeed(CheckpointStore, store)
   * let bodyRuns = 0
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) =>
   *     Effect.sync(() => {
   *       bodyRuns++
   *       return x * x
   *     })
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-store-make-" })
   *   const dir = yield* square(3).pipe(
   *     Effect.zipRight(Dfk.checkpoint),
   *     Effect.provide(Dfk.layer({ runDir, checkpointMode: "manual" })),
   *     Effect.provide(storeLayer)
   *   )
   *   const entries: Array<CheckpointEntry> = []
   *   yield* store.load(dir, (entry) => {
   *     entries.push(entry)
   *   })
   *   console.assert(entries.length === 1 && entries[0]!.app === "square" && entries[0]!.result === 9)
   *
   *   const resumed = yield* square(3).pipe(
   *     Effect.provide(Dfk.layer({ runDir })),
   *     Effect.provide(CheckpointFiles.layer([dir])),
   *     Effect.provide(storeLayer)
   *   )
   *   console.assert(resumed === 9 && bodyRuns === 1)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category constructors
   */
  static readonly makeMemory: () => CheckpointStoreService = makeMemory
}

/**
 * Makes an in-memory store.
 *
 * @example An empty memory store
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore } from "effect-dfk"
 *
 * const store = CheckpointStore.makeMemory()
 * console.assert(Effect.runSync(store.exists("runinfo/000/checkpoint")) === false)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export function makeMemory(): CheckpointStoreService {
  const dirs = new Map<string, Array<CheckpointEntry>>()
  const runs = new Map<string, Array<string>>()
  const plain = (e: CheckpointEntry): CheckpointEntry =>
    e.deleted === true
      ? { hash: e.hash, app: e.app, version: e.version, input: e.input, result: undefined, time: e.time, deleted: true }
      : { hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time }
  return {
    append: (dir, entries) =>
      Effect.sync(() => {
        const list = dirs.get(dir) ?? []
        for (const e of entries) list.push(plain(e))
        dirs.set(dir, list)
      }),
    load: (dir, onEntry) =>
      Effect.suspend(() => {
        const list = dirs.get(dir)
        if (list === undefined) {
          return Effect.fail(new BadCheckpoint({ path: dir, line: 0, reason: "the store holds no checkpoint here" }))
        }
        for (const e of list) onEntry(e)
        return Effect.void
      }),
    exists: (dir) => Effect.sync(() => dirs.has(dir)),
    // Runs live in the store too: a memory store never touches the disk.
    runs: {
      list: (runDir) => Effect.sync(() => [...(runs.get(normalRunDir(runDir)) ?? [])]),
      allocate: (runDir) =>
        Effect.sync(() => {
          const key = normalRunDir(runDir)
          const list = runs.get(key) ?? []
          const run = runPath(key, list.length)
          list.push(run)
          runs.set(key, list)
          return run
        })
    }
  }
}
