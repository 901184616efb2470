/**
 * Files in the key (`File.Content`, `File.Stat`): the schemas' reads through the platform
 * `FileSystem`, the sha256 of a file read in chunks, the kernel's cache of hashes (one hash
 * per path, size and modification time for the kernel's lifetime), and how their failures are
 * told apart from other parse issues.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import { createHash } from "node:crypto"
import { reasonOf } from "./messages.ts"

/** How much of a file one read takes while hashing it. */
const CHUNK = 1024 * 1024

/** The hex sha256 of a file's bytes, read in chunks into one buffer (never the whole file at once). */
export const sha256File = (fs: FileSystem.FileSystem, path: string): Effect.Effect<string, PlatformError> =>
  Effect.scoped(Effect.gen(function*() {
    const file = yield* fs.open(path, { flag: "r" })
    const hash = createHash("sha256")
    const buffer = new Uint8Array(CHUNK)
    for (;;) {
      const n = Number(yield* file.read(buffer))
      if (n === 0) break
      hash.update(n === CHUNK ? buffer : buffer.subarray(0, n))
    }
    return hash.digest("hex")
  }))

/**
 * The sha256 of files by path, size and modification time: each file is hashed once however
 * many calls name it, concurrent ones included (they wait for the one read). A kernel makes
 * one and provides it to the encoding and decoding of its apps' schemas, so it lives as long
 * as the kernel.
 */
export class HashCache {
  private readonly known = new Map<string, string | Deferred.Deferred<string, PlatformError>>()

  /** How many files were read (for the tests). */
  reads = 0

  hash(fs: FileSystem.FileSystem, path: string, info: FileSystem.File.Info): Effect.Effect<string, PlatformError> {
    if (Option.isNone(info.mtime)) return this.read(fs, path)
    const key = `${info.size} ${info.mtime.value.getTime()} ${path}`
    return Effect.suspend(() => {
      const known = this.known.get(key)
      if (typeof known === "string") return Effect.succeed(known)
      if (known !== undefined) {
        // Another call reads it: its outcome, or (it was interrupted) a read of our own.
        return Effect.flatMap(
          Effect.exit(Deferred.await(known)),
          (exit) => Exit.isInterrupted(exit) ? this.hash(fs, path, info) : exit
        )
      }
      const deferred = Deferred.unsafeMake<string, PlatformError>(FiberId.none)
      this.known.set(key, deferred)
      return this.read(fs, path).pipe(
        Effect.onExit((exit) => {
          if (Exit.isSuccess(exit)) this.known.set(key, exit.value)
          else this.known.delete(key)
          return Deferred.done(deferred, exit)
        })
      )
    })
  }

  private read(fs: FileSystem.FileSystem, path: string): Effect.Effect<string, PlatformError> {
    return Effect.suspend(() => {
      this.reads++
      return sha256File(fs, path)
    })
  }
}

/** The kernel's `HashCache`, provided to its apps' schemas; outside a kernel every encode reads. */
export class FileHashes extends Context.Tag("effect-dfk/FileHashes")<FileHashes, HashCache>() {}

/** The services a kernel provides to its apps' schemas: its `FileSystem` and its `HashCache`. */
export type FileServices = FileSystem.FileSystem | FileHashes

/** The issues the file schemas fail with (their messages name the file and what happened to it), with the value each was about. */
const fileIssues = new WeakMap<ParseResult.ParseIssue, unknown>()

const issue = (ast: SchemaAST.AST, actual: unknown, message: string): ParseResult.ParseIssue => {
  const made = new ParseResult.Type(ast, actual, message)
  fileIssues.set(made, actual)
  return made
}

/** A file schema's failure: its message, and the value it was about (a path, or an encoded `{ path, … }`). */
export interface FileProblem {
  readonly message: string
  readonly actual: unknown
}

/**
 * The messages of the file schemas' issues in a parse issue (a file that changed, is gone or
 * cannot be read), in order; empty when none of its failures is about a file.
 */
export const fileProblems = (root: ParseResult.ParseIssue): ReadonlyArray<string> =>
  fileProblemsOf(root).map((p) => p.message)

/** The file schemas' failures in a parse issue, in order, with the values they were about. */
export const fileProblemsOf = (root: ParseResult.ParseIssue): ReadonlyArray<FileProblem> => {
  const found: Array<FileProblem> = []
  const visit = (node: ParseResult.ParseIssue): void => {
    if (fileIssues.has(node)) {
      found.push({ message: (node as ParseResult.Type).message!, actual: fileIssues.get(node) })
      return
    }
    switch (node._tag) {
      case "Pointer":
      case "Refinement":
      case "Transformation":
        return visit(node.issue)
      case "Composite":
        if (Array.isArray(node.issues)) { for (const i of node.issues) visit(i) }
        else visit(node.issues as ParseResult.ParseIssue)
        return
    }
  }
  visit(root)
  return found
}

/**
 * `f` with the `FileSystem` of the running fiber and its `HashCache` (`undefined` outside a
 * kernel). Without a `FileSystem` (the synchronous parsers of `Schema.encodeEither` and
 * friends), a `Forbidden` issue: the schema needs the effectful ones.
 */
const withFileSystem = <A>(
  ast: SchemaAST.AST,
  actual: unknown,
  f: (fs: FileSystem.FileSystem, cache: HashCache | undefined) => Effect.Effect<A, ParseResult.ParseIssue>
): Effect.Effect<A, ParseResult.ParseIssue, FileSystem.FileSystem> =>
  Effect.flatMap(Effect.serviceOption(FileSystem.FileSystem), (fs) =>
    Option.isNone(fs)
      ? Effect.fail(new ParseResult.Forbidden(ast, actual, "Reading a file needs a FileSystem (an effectful parser)"))
      : Effect.flatMap(Effect.serviceOption(FileHashes), (cache) => f(fs.value, Option.getOrUndefined(cache))))

const isNotFound = (e: PlatformError) => e._tag === "SystemError" && e.reason === "NotFound"

/**
 * The stat of a file that must be there (`encode`: an input or a result being encoded) or
 * have been there (`decode`: an encoded value read back).
 */
const statOf = (
  fs: FileSystem.FileSystem,
  ast: SchemaAST.AST,
  actual: unknown,
  path: string,
  side: "encode" | "decode"
): Effect.Effect<FileSystem.File.Info, ParseResult.ParseIssue> =>
  fs.stat(path).pipe(
    Effect.mapError((e) =>
      issue(
        ast,
        actual,
        isNotFound(e)
          ? side === "encode" ? `The file ${path} does not exist` : `The file ${path} is gone`
          : `Cannot read the file ${path}: ${reasonOf(e)}`
      )
    ),
    Effect.filterOrElse(
      (info) => info.type === "File",
      (info) => Effect.fail(issue(ast, actual, `${path} is not a file (it is a ${info.type.toLowerCase()})`))
    )
  )

const hashOf = (
  fs: FileSystem.FileSystem,
  cache: HashCache | undefined,
  ast: SchemaAST.AST,
  actual: unknown,
  path: string,
  info: FileSystem.File.Info
): Effect.Effect<string, ParseResult.ParseIssue> =>
  (cache === undefined ? sha256File(fs, path) : cache.hash(fs, path, info)).pipe(
    Effect.mapError((e) => issue(ast, actual, `Cannot read the file ${path}: ${reasonOf(e)}`))
  )

/** The encoded form of `File.Content`. */
export const ContentEncoded = Schema.Struct({ path: Schema.String, sha256: Schema.String })

/** `File.Content`: a path, encoded with the sha256 of the file's bytes. */
export const Content = Schema.transformOrFail(ContentEncoded, Schema.String, {
  strict: true,
  decode: ({ path, sha256 }, _, ast, actual) =>
    withFileSystem(
      ast,
      actual,
      (fs, cache) =>
        Effect.flatMap(statOf(fs, ast, actual, path, "decode"), (info) =>
          Effect.flatMap(hashOf(fs, cache, ast, actual, path, info), (now) =>
            now === sha256
              ? Effect.succeed(path)
              : Effect.fail(
                issue(
                  ast,
                  actual,
                  `The file ${path} changed (sha256 ${sha256.slice(0, 12)}… then, ${now.slice(0, 12)}… now)`
                )
              )))
    ),
  encode: (path, _, ast) =>
    withFileSystem(ast, path, (fs, cache) =>
      Effect.flatMap(
        statOf(fs, ast, path, path, "encode"),
        (info) => Effect.map(hashOf(fs, cache, ast, path, path, info), (sha256) => ({ path, sha256 }))
      ))
}).annotations({ identifier: "File.Content" })

/** The encoded form of `File.Stat`. */
export const StatEncoded = Schema.Struct({ path: Schema.String, size: Schema.Number, mtimeMs: Schema.Number })

const mtimeOf = (info: FileSystem.File.Info): number =>
  Option.match(info.mtime, { onNone: () => -1, onSome: (d) => d.getTime() })

/** `File.Stat`: a path, encoded with the file's size and modification time (no read). */
export const Stat = Schema.transformOrFail(StatEncoded, Schema.String, {
  strict: true,
  decode: ({ mtimeMs, path, size }, _, ast, actual) =>
    withFileSystem(
      ast,
      actual,
      (fs) =>
        Effect.flatMap(statOf(fs, ast, actual, path, "decode"), (info) =>
          Number(info.size) === size && mtimeOf(info) === mtimeMs
            ? Effect.succeed(path)
            : Effect.fail(
              issue(ast, actual, `The file ${path} changed (its size or modification time is no longer the same)`)
            ))
    ),
  encode: (path, _, ast) =>
    withFileSystem(ast, path, (fs) =>
      Effect.map(
        statOf(fs, ast, path, path, "encode"),
        (info) => ({ path, size: Number(info.size), mtimeMs: mtimeOf(info) })
      ))
}).annotations({ identifier: "File.Stat" })
