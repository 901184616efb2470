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

/**
 * One memoized result, as stored: the line
 * `{"v":1,"hash":…,"app":…,"version":…,"input":…,"result":…,"time":…}` of `tasks.jsonl`.
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
  /** The result, encoded with the app's `output` schema. */
  readonly result: unknown
  /** When the result was computed, ISO-8601. */
  readonly time: string
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
 * The operations a checkpoint store provides. `dir` is a checkpoint directory such as
 * `runinfo/003/checkpoint`.
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
  /** Hands every entry of the checkpoint in `dir` to `onEntry`, in stored order. */
  readonly load: (dir: string, onEntry: (entry: CheckpointEntry) => void) => Effect.Effect<void, BadCheckpoint>
  /** Whether `dir` holds a checkpoint. */
  readonly exists: (dir: string) => Effect.Effect<boolean>
}

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
export class CheckpointStore extends Context.Tag("effect-dfk/CheckpointStore")<
  CheckpointStore,
  CheckpointStoreService
>() {
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
  return {
    append: (dir, entries) =>
      Effect.sync(() => {
        const list = dirs.get(dir) ?? []
        for (const e of entries) {
          list.push({ hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time })
        }
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
    exists: (dir) => Effect.sync(() => dirs.has(dir))
  }
}
