/**
 * `dfk --store`: which checkpoint store the commands read and write. By default the JSON Lines
 * files (`CheckpointStore.layerFileSystem`); `--store sqlite:PATH` or `--store postgres://…`
 * (`postgresql://` too; or the environment variable `DFK_STORE`) a SQL store (`SqlStore.layer`
 * of `effect-dfk/sql`) over `@effect/sql-sqlite-node` or `@effect/sql-pg`, which the commands
 * load only then (they are optional peer dependencies of the package).
 *
 * The connection URL is never printed: the store is named `postgres://host:port/db` (no user,
 * no password, no parameters) and every error `dfk` prints has the URL's secrets masked.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type { SqlClient } from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { CheckpointStore } from "../mod.ts"
import { addSecret, CliError, CliStore, ExitStatus, reasonOf } from "./common.ts"
import type { SqlClientError } from "./sqlClient.ts"
import { importOptional, loadSqlClient, parseSqlStore, safeUrlName } from "./sqlClient.ts"

/**
 * What `--store` asked for.
 *
 * @since 0.2.0
 */
export type StoreSpec =
  | { readonly _tag: "Files" }
  | { readonly _tag: "Sqlite"; readonly filename: string; readonly name: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string>; readonly name: string }

/**
 * The secrets of a URL, to be masked wherever `dfk` prints: the URL itself, its password (as
 * written and decoded) and its query string (which may carry one too).
 */
const secretsOf = (url: string): Array<string> => {
  const out = [url]
  try {
    const u = new URL(url)
    if (u.password !== "") out.push(u.password, decodeURIComponent(u.password))
    if (u.search.length > 1) out.push(u.search.slice(1))
  } catch {
    // Not a URL: the whole text is the secret.
  }
  return out
}

/**
 * Reads a `--store` value (`parseSqlStore`): `sqlite:PATH`, `postgres://…` or
 * `postgresql://…`. Whatever is not an SQLite store (a PostgreSQL URL, or a bad value, which
 * may hold a password too) has its secrets registered for masking (`addSecret`) at once.
 *
 * @since 0.2.0
 */
export const parseStore = (text: string): StoreSpec | { readonly error: string } => {
  if (!text.startsWith("sqlite:")) { for (const secret of secretsOf(text)) addSecret(secret) }
  const spec = parseSqlStore(text)
  if (Either.isLeft(spec)) return { error: spec.left.message }
  return spec.right._tag === "Sqlite"
    ? { ...spec.right, name: `sqlite:${spec.right.filename}` }
    : { ...spec.right, name: safeUrlName(text) }
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object"

/** A `SqlClientError` as the `CliError` of `dfk` (exit status 1). */
const cliError = (e: SqlClientError): CliError => new CliError({ message: e.message, code: ExitStatus.failed })

/** Why the store cannot be opened, as a `CliError` (exit status 1) naming it safely. */
const cannotOpen = (name: string, hint = "") => (e: unknown): CliError => {
  const cause = typeof e === "object" && e !== null && "cause" in e ? (e as { cause: unknown }).cause : undefined
  const reason = cause === undefined ? reasonOf(e) : `${reasonOf(e)}: ${reasonOf(cause)}`
  return new CliError({ message: `Cannot open the store ${name}: ${reason}${hint}`, code: ExitStatus.failed })
}

/** The SQL store over a client layer, both loaded now. */
const sqlStore = (
  name: string,
  client: Layer.Layer<SqlClient, unknown>,
  hint = ""
): Effect.Effect<Layer.Layer<CheckpointStore, CliError>, CliError> =>
  Effect.map(
    Effect.mapError(
      importOptional("--store", name.startsWith("sqlite:") ? "sqlite:" : "postgres://", "@effect/sql", () =>
        import("../sql.ts")),
      cliError
    ),
    ({ SqlStore }) =>
      SqlStore.layer().pipe(
        Layer.provide(client),
        // A driver that cannot load (better-sqlite3 under Deno) dies rather than fails: both
        // are a store that cannot be opened.
        Layer.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Layer.failCause(cause as Cause.Cause<never>)
            : Layer.fail(cannotOpen(name, hint)(Cause.squash(cause)))
        )
      )
  )

/**
 * The layer of the store `spec` asks for, with the `CliStore` that says which it is. A SQL
 * client package is imported only here, when `--store` names it; a missing one is a clear
 * error (`--store sqlite: needs @effect/sql-sqlite-node: npm install …`), as is an SQLite file
 * that does not exist (exit status 2: a bad path), unless `create` (the demo makes its store).
 *
 * @since 0.2.0
 */
export const storeLayer = (
  spec: StoreSpec,
  options: { readonly create?: boolean | undefined } = {}
): Layer.Layer<CheckpointStore | CliStore, CliError, FileSystem.FileSystem | Path.Path> => {
  switch (spec._tag) {
    case "Files":
      return Layer.merge(
        CheckpointStore.layerFileSystem,
        Layer.succeed(CliStore, { sql: false, name: "files", spec: Option.none() })
      )
    case "Sqlite":
      return Layer.merge(
        Layer.unwrapEffect(Effect.gen(function*() {
          const client = yield* Effect.mapError(loadSqlClient(spec), cliError)
          const fs = yield* FileSystem.FileSystem
          const info = yield* Effect.option(fs.stat(spec.filename))
          if (options.create !== true && (Option.isNone(info) || info.value.type !== "File")) {
            return yield* new CliError({
              message: `The store ${spec.name} does not exist` +
                (Option.isSome(info) ? " (it is not a file)" : ""),
              code: ExitStatus.usage
            })
          }
          const hint = isDeno
            ? " (better-sqlite3, behind @effect/sql-sqlite-node, is a Node addon that Deno cannot load: run this under Node, or use a postgres:// store)"
            : ""
          return yield* sqlStore(spec.name, client, hint)
        })),
        Layer.succeed(CliStore, { sql: true, name: spec.name, spec: Option.some(Redacted.make(spec.name)) })
      )
    case "Postgres":
      return Layer.merge(
        Layer.unwrapEffect(Effect.gen(function*() {
          const client = yield* Effect.mapError(
            loadSqlClient(spec, { applicationName: "dfk", maxConnections: 4 }),
            cliError
          )
          return yield* sqlStore(spec.name, client)
        })),
        Layer.succeed(CliStore, { sql: true, name: spec.name, spec: Option.some(spec.url) })
      )
  }
}

/**
 * The store layer of a `--store` value (none: the files); a bad value is exit status 2.
 *
 * @since 0.2.0
 */
export const storeFromOption = (
  value: Option.Option<string>,
  options: { readonly create?: boolean | undefined } = {}
): Layer.Layer<CheckpointStore | CliStore, CliError, FileSystem.FileSystem | Path.Path> => {
  if (Option.isNone(value) || value.value === "") return storeLayer({ _tag: "Files" })
  const spec = parseStore(value.value)
  return "error" in spec
    ? Layer.fail(new CliError({ message: spec.error, code: ExitStatus.usage }))
    : storeLayer(spec, options)
}
