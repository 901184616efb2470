/**
 * Results and their checkpoint entries: a result encoded with its app's output schema into
 * its entry (an `EncodedEntry`), and a loaded entry's result decoded back. Neither ever throws: what goes
 * wrong is a `Warning` (the result is returned, not checkpointed) or a miss.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type { EncodedEntry } from "../CheckpointStore.ts"
import type { AppSpec } from "./appSpec.ts"
import { tryCanonicalJson } from "./canonical.ts"
import { fileProblems } from "./files.ts"
import type { LoadedResult } from "./loaded.ts"
import { parseMessage, reasonOf, Warning } from "./messages.ts"

// The current time, ISO-8601, formatted at most once per millisecond.
let lastMillis = -1
let lastTime = ""

/** The current time, ISO-8601: the `time` of an entry made now. */
export const timeNow = (): string => {
  const now = Date.now()
  if (now !== lastMillis) {
    lastMillis = now
    lastTime = new Date(now).toISOString()
  }
  return lastTime
}

/** The entry of a result with its JSON texts. */
export const encodedEntry = (
  app: AppSpec,
  hash: string,
  input: string,
  result: string,
  time: string
): EncodedEntry => ({
  hash,
  app: app.name,
  version: app.version,
  input,
  result,
  time
})

/** The entry of an encoded result, or a warning when it cannot be checkpointed. */
const entryOfEncoded = (
  app: AppSpec,
  hash: string,
  inputJson: string,
  encoded: Either.Either<unknown, ParseResult.ParseError>
): EncodedEntry | Warning => {
  // Whatever goes wrong making the entry (a getter that throws included), the result is
  // still returned: a throw here would leave the call in flight.
  try {
    if (Either.isLeft(encoded)) {
      return new Warning(
        `The result of ${app.name} cannot be checkpointed: it does not encode with the output schema: ${
          parseMessage(Cause.fail(encoded.left))
        }`
      )
    }
    const json = tryCanonicalJson(encoded.right)
    if (typeof json !== "string") {
      return new Warning(`The result of ${app.name} cannot be checkpointed: it has no JSON form (${json.error})`)
    }
    return encodedEntry(app, hash, inputJson, json, timeNow())
  } catch (e) {
    return new Warning(`The result of ${app.name} cannot be checkpointed: ${reasonOf(e)}`)
  }
}

/**
 * The checkpoint entry of a result that a call computed (its time: now), or a warning: at
 * once with the synchronous encoder (the common case), else as an effect, with the full one
 * (a schema that needs effects).
 */
export const resultEntry = (
  app: AppSpec,
  hash: string,
  inputJson: string,
  value: unknown
): EncodedEntry | Warning | Effect.Effect<EncodedEntry | Warning> => {
  let encoded: Either.Either<unknown, ParseResult.ParseError>
  try {
    encoded = app.encodeOutputSync(value)
  } catch (e) {
    return new Warning(`The result of ${app.name} cannot be checkpointed: encoding it threw: ${reasonOf(e)}`)
  }
  if (Either.isRight(encoded)) return entryOfEncoded(app, hash, inputJson, encoded)
  return Effect.map(
    Effect.exit(
      Effect.either(app.encodeOutput(value)) as Effect.Effect<Either.Either<unknown, ParseResult.ParseError>>
    ),
    (e) =>
      Exit.isSuccess(e)
        ? entryOfEncoded(app, hash, inputJson, e.value)
        : new Warning(`The result of ${app.name} cannot be checkpointed: encoding it failed: ${parseMessage(e.cause)}`)
  )
}

/**
 * Decodes a loaded entry with the app's output schema (the full decoder); `undefined`, with
 * a warning, when it no longer decodes, which makes the call a miss.
 */
export const decodeLoaded = (
  app: AppSpec,
  hash: string,
  entry: LoadedResult
): Effect.Effect<Exit.Exit<unknown, unknown> | undefined> =>
  Effect.suspend(() => app.decodeOutput(entry.result)).pipe(
    Effect.map(Exit.succeed),
    Effect.catchAllCause((cause) => {
      // A file of the result (File.Content, File.Stat) that changed or is gone: said as it is.
      const failure = Cause.failureOption(cause)
      const files = Option.isSome(failure) && ParseResult.isParseError(failure.value)
        ? fileProblems(failure.value.issue)
        : []
      return Effect.as(
        Effect.logWarning(
          files.length > 0
            ? `A checkpointed result of ${app.name} (${hash.slice(0, 12)}) is not served, so the app runs again: ${
              files.join("; ")
            }`
            : `A checkpointed result of ${app.name} (${
              hash.slice(0, 12)
            }) no longer decodes with its output schema, so the app runs again: ${parseMessage(cause)}`
        ),
        undefined
      )
    })
  ) as Effect.Effect<Exit.Exit<unknown, unknown> | undefined>

/**
 * Decodes a loaded entry with the app's synchronous decoder: its outcome, or `undefined`
 * when that decoder fails or throws (which may only mean that the schema needs effects:
 * then `decodeLoaded` says).
 */
export const decodeLoadedSync = (app: AppSpec, entry: LoadedResult): Exit.Exit<unknown, unknown> | undefined => {
  try {
    const decoded = app.decodeOutputSync(entry.result)
    return Either.isRight(decoded) ? Exit.succeed(decoded.right) : undefined
  } catch {
    return undefined
  }
}
