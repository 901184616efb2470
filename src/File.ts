/**
 * Files in the memo key: schemas for paths whose contents matter. An app whose input holds a
 * `File.Content` is keyed by the file's bytes (its sha256), not only by its name, so editing
 * the file reruns exactly the apps that read it; in an output, a checkpointed result whose
 * file changed or is gone is computed again instead of served.
 *
 * Both schemas read through the platform `FileSystem`. Under a kernel (an app's input and
 * output) it is the kernel's own, and each file is hashed once per kernel for a given path,
 * size and modification time, however many calls name it. They need the effectful parsers
 * (`Schema.encode`, `Schema.decodeUnknown`); the synchronous ones fail with a `Forbidden`
 * issue.
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Schema from "effect/Schema"
import * as files from "./internal/files.ts"

/**
 * The type of `File.Content`: a path (a string) whose encoded form is `{ path, sha256 }`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Content extends Schema.Schema<string, ContentEncoded, FileSystem.FileSystem> {}

/**
 * The encoded form of `File.Content`: the path as given and the hex sha256 of the file's bytes.
 *
 * @since 0.2.0
 * @category models
 */
export interface ContentEncoded {
  /** The path, as given. */
  readonly path: string
  /** The hex sha256 of the file's bytes. */
  readonly sha256: string
}

/**
 * A path whose contents belong in the memo key: the type is the path (a string); encoding
 * reads the file (in chunks, through `FileSystem`) and gives `{ path, sha256 }`, so the key
 * covers its bytes. Decoding checks that the file still has that sha256 and fails, naming
 * the file, when it changed or is gone: a checkpointed result with a `File.Content` in its
 * output is then a miss (with a warning) and the app runs again. A file that does not exist
 * fails the encoding: as an input, the call fails with `AppCacheError` naming the path before
 * the body runs. The path is kept as given (a relative path is part of the key as it is).
 *
 * @example An app keyed by the bytes of the file it reads
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { App, Dfk, File } from "effect-dfk"
 *
 * let bodyRuns = 0
 * const wordCount = App.make(
 *   { name: "word_count", input: Schema.Struct({ text: File.Content }), output: Schema.Number, cache: true },
 *   ({ text }) =>
 *     Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(text)).pipe(
 *       Effect.map((s) => (bodyRuns++, s.split(/\s+/).filter((w) => w !== "").length))
 *     )
 * )
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-content-" })
 *   const text = path.join(dir, "text.txt")
 *   const run = wordCount({ text }).pipe(
 *     Effect.provide(Dfk.layer({ runDir: path.join(dir, "runs"), checkpointMode: "task_exit" }))
 *   )
 *   yield* fs.writeFileString(text, "one two three")
 *   console.assert((yield* run) === 3)
 *   console.assert((yield* run) === 3 && bodyRuns === 1) // same bytes: served from the checkpoint
 *   yield* fs.writeFileString(text, "one two three four")
 *   console.assert((yield* run) === 4 && bodyRuns === 2) // new bytes, new key: the body runs
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const Content: Content = files.Content

/**
 * The type of `File.Stat`: a path (a string) whose encoded form is `{ path, size, mtimeMs }`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Stat extends Schema.Schema<string, StatEncoded, FileSystem.FileSystem> {}

/**
 * The encoded form of `File.Stat`: the path as given, the file's size in bytes and its
 * modification time in milliseconds since the epoch.
 *
 * @since 0.2.0
 * @category models
 */
export interface StatEncoded {
  /** The path, as given. */
  readonly path: string
  /** The file's size in bytes. */
  readonly size: number
  /** The file's modification time, in milliseconds since the epoch. */
  readonly mtimeMs: number
}

/**
 * A path whose size and modification time belong in the memo key, without reading the file:
 * for inputs too big to hash on every run. Encoding gives `{ path, size, mtimeMs }`; decoding
 * checks that both are still the same (else it fails, naming the file, as `File.Content`
 * does). Cheaper than `File.Content`, and weaker: a rewrite with the same bytes is a new key
 * (a new modification time), and a change that keeps the size and the modification time goes
 * unseen.
 *
 * @example Keyed by size and modification time
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { File } from "effect-dfk"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-stat-" })
 *   const big = path.join(dir, "big.bin")
 *   yield* fs.writeFile(big, new Uint8Array(1000))
 *   const encoded = yield* Schema.encode(File.Stat)(big)
 *   console.assert(encoded.path === big && encoded.size === 1000 && encoded.mtimeMs > 0)
 *   console.assert((yield* Schema.decode(File.Stat)(encoded)) === big) // unchanged
 *   yield* fs.writeFile(big, new Uint8Array(2000))
 *   const changed = yield* Effect.either(Schema.decode(File.Stat)(encoded))
 *   console.assert(changed._tag === "Left" && changed.left.message.includes(`The file ${big} changed`))
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const Stat: Stat = files.Stat
