/**
 * The SQL client of a store string (`sqlite:PATH`, `postgres://…` or `postgresql://…`): what
 * `dfk --store`, the multi-process test worker (`test/fixtures/sql-worker.ts`) and the startup
 * benchmark's child (`bench/startup-child.ts`) open a SQL store over.
 *
 * The client packages (`@effect/sql-sqlite-node`, `@effect/sql-pg`) are imported only when a
 * store names one, with `import()`: they are optional peer dependencies, and better-sqlite3
 * (behind `@effect/sql-sqlite-node`) does not load under Deno. This module imports nothing of
 * them, nor of the rest of `cli/`, at its top (the bench runs a plain-JS copy of it).
 *
 * A PostgreSQL URL is kept `Redacted` from the moment it is read and is never put in a message.
 *
 * @module
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { ConfigError } from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/**
 * A SQL store a store string names: an SQLite file, or a PostgreSQL database by its URL.
 *
 * @since 0.2.0
 */
export type SqlClientSpec =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

/**
 * Why there is no SQL client: the store string is not one (`BadStore`), or the client package
 * is not installed (`MissingPackage`) or cannot be loaded (`CannotLoad`). `message` says so
 * in one line, with no secret of the string in it.
 *
 * @since 0.2.0
 */
export class SqlClientError extends Data.TaggedError("SqlClientError")<{
  readonly reason: "BadStore" | "MissingPackage" | "CannotLoad"
  readonly message: string
}> {}

/**
 * The name of a PostgreSQL URL that may be printed: `postgres://host:port/db`, without the
 * user, the password or the parameters.
 *
 * @since 0.2.0
 */
export const safeUrlName = (url: string): string => {
  try {
    const u = new URL(url)
    const scheme = u.protocol.replace(/:$/, "")
    return `${scheme}://${u.hostname}${u.port === "" ? "" : `:${u.port}`}${u.pathname === "/" ? "" : u.pathname}`
  } catch {
    return `${url.split(":")[0]}://…`
  }
}

const POSTGRES = /^postgres(ql)?:\/\//i

/**
 * Reads a store string: `sqlite:PATH` (`sqlite:///abs` is `/abs`), `postgres://…` or
 * `postgresql://…`. `what` names the string in the messages (`--store`, an environment
 * variable); a bad one is a `BadStore` error that never quotes it (it may hold a password).
 *
 * @since 0.2.0
 */
export const parseSqlStore = (
  text: string,
  what: string = "--store"
): Either.Either<SqlClientSpec, SqlClientError> => {
  const bad = (message: string) => Either.left(new SqlClientError({ reason: "BadStore", message }))
  if (POSTGRES.test(text)) {
    try {
      new URL(text)
    } catch {
      return bad(`${what}: ${safeUrlName(text)} is not a valid URL`)
    }
    return Either.right({ _tag: "Postgres", url: Redacted.make(text) })
  }
  if (text.startsWith("sqlite:")) {
    const filename = text.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "")
    if (filename === "") return bad(`${what} sqlite: needs a file, e.g. ${what} sqlite:runinfo/dfk.db`)
    return Either.right({ _tag: "Sqlite", filename })
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1]
  return bad(
    `${what} must be sqlite:PATH, postgres://… or postgresql://…` +
      (scheme === undefined ? "" : ` (got a ${scheme}: store)`)
  )
}

const reasonOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)

/** The package a failed `import()` could not find, if that is why it failed. */
const missingPackage = (e: unknown): string | undefined => {
  const text = reasonOf(e)
  const m = /Cannot find (?:package|module) ['"]([^'"]+)['"]/.exec(text) ??
    /(?:Could not|Cannot) (?:find|resolve) (?:npm )?package ['"]?([@\w./-]+)['"]?/.exec(text)
  if (m === null) return undefined
  const name = m[1]!.replace(/^npm:/, "")
  const parts = name.split("/")
  return name.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

/**
 * Imports a module of an optional package (`kind` is the store kind, `sqlite:` or
 * `postgres://`, for the message), failing with the package to install when it is missing.
 *
 * @since 0.2.0
 */
export const importOptional = <A>(
  what: string,
  kind: string,
  client: string,
  load: () => Promise<A>
): Effect.Effect<A, SqlClientError> =>
  Effect.tryPromise({
    try: load,
    catch: (e) => {
      const missing = missingPackage(e)
      const install = missing === undefined || missing === client ? client : `${missing} ${client}`
      return missing !== undefined
        ? new SqlClientError({
          reason: "MissingPackage",
          message: `${what} ${kind} needs ${missing}: npm install ${install}`
        })
        : new SqlClientError({ reason: "CannotLoad", message: `${what} ${kind} cannot load ${client}: ${reasonOf(e)}` })
    }
  })

/**
 * Options of the client: for PostgreSQL, the `application_name` the server shows and the
 * pool's size (the driver's defaults when not given); `what` names the store in messages.
 *
 * @since 0.2.0
 */
export interface SqlClientOptions {
  readonly what?: string | undefined
  readonly applicationName?: string | undefined
  readonly maxConnections?: number | undefined
}

/**
 * Loads the client package of `spec` now and gives the layer of its client (not yet built):
 * `@effect/sql-sqlite-node`'s `SqliteClient` for a file, `@effect/sql-pg`'s `PgClient` for a URL.
 *
 * @since 0.2.0
 */
export const loadSqlClient = (
  spec: SqlClientSpec,
  options: SqlClientOptions = {}
): Effect.Effect<Layer.Layer<SqlClient, SqlError | ConfigError>, SqlClientError> => {
  const what = options.what ?? "--store"
  return spec._tag === "Sqlite"
    ? Effect.map(
      importOptional(what, "sqlite:", "@effect/sql-sqlite-node", () => import("@effect/sql-sqlite-node/SqliteClient")),
      (m): Layer.Layer<SqlClient, ConfigError> => m.layer({ filename: spec.filename })
    )
    : Effect.map(
      importOptional(what, "postgres://", "@effect/sql-pg", () => import("@effect/sql-pg/PgClient")),
      (m): Layer.Layer<SqlClient, SqlError> =>
        m.layer({
          url: spec.url,
          ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
          ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
        })
    )
}

/**
 * The SQL client layer of a store string (`parseSqlStore`, then `loadSqlClient` when the
 * layer is built): a bad string, or a client package that is missing, fails it with a
 * `SqlClientError`.
 *
 * @since 0.2.0
 */
export const sqlClientLayer = (
  text: string,
  options: SqlClientOptions = {}
): Layer.Layer<SqlClient, SqlClientError | SqlError | ConfigError> =>
  Layer.unwrapEffect(
    Effect.flatMap(parseSqlStore(text, options.what), (spec) => loadSqlClient(spec, options))
  )
