/**
 * What the kernel says: log text on one line, messages of causes and parse errors, plurals.
 */
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import { CheckpointError } from "../errors.ts"

/** Text on one line: line breaks (and the indentation after them) become " | ". */
export const oneLine = (text: string): string => text.trim().replace(/\s*[\r\n]+\s*/g, " | ")

/** The message of a failed pass, on one line: the error's, or the whole cause for a defect. */
export const causeMessage = (cause: Cause.Cause<{ readonly message: string }>): string =>
  oneLine(Option.match(Cause.failureOption(cause), { onNone: () => Cause.pretty(cause), onSome: (e) => e.message }))

/** How many entries of a failed append the store says it kept (`CheckpointError.written`). */
export const keptOf = (cause: Cause.Cause<unknown>): number =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => 0,
    onSome: (e) =>
      e instanceof CheckpointError && typeof e.written === "number" && Number.isInteger(e.written) && e.written > 0
        ? e.written
        : 0
  })

/** Why an encoded value does not decode, on one line: each issue as `path: message`. */
export const parseMessage = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => oneLine(Cause.pretty(cause)),
    onSome: (e) =>
      ParseResult.isParseError(e)
        ? ParseResult.ArrayFormatter.formatErrorSync(e)
          .map((issue) =>
            (issue.path.length > 0 ? `at ${issue.path.map(String).join(".")}: ` : "") + oneLine(issue.message)
          )
          .join("; ")
        : oneLine(String((e as { message?: unknown })?.message ?? e))
  })

/** Why a result is not checkpointed (logged as a warning). */
export class Warning {
  constructor(readonly message: string) {}
}

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** The message of an error (a platform error, an `Error`, anything with a message), else its text. */
export const reasonOf = (error: unknown): string =>
  error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)

/**
 * The message of an error from a SQL client, with the driver's own reason when the client
 * wraps one (`@effect/sql`'s `SqlError` says only "Failed to execute statement"; its cause
 * says why, e.g. "deadlock detected" with PostgreSQL's error code).
 */
export const sqlReasonOf = (error: unknown): string => {
  const outer = reasonOf(error)
  const cause = typeof error === "object" && error !== null ? (error as { cause?: unknown }).cause : undefined
  if (cause === undefined || cause === null) return outer
  const inner = reasonOf(cause)
  const code = typeof cause === "object" && typeof (cause as { code?: unknown }).code === "string"
    ? (cause as { code: string }).code
    : undefined
  if (inner === "" || inner === outer) return outer
  return `${outer} (${oneLine(inner)}${code === undefined ? "" : `, code ${code}`})`
}
