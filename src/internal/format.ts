/**
 * The JSON Lines format of a checkpoint (DESIGN §4): the line of an entry (built from an
 * encoded entry or from an entry object), its validation, and the line rule (blank, entry,
 * torn, corrupt) that the loader, `CheckpointFile.checkLine`, `dfk verify` and `dfk repair`
 * all apply. Reading a file is in `fileLoad.ts`, the store that writes them in `fileStore.ts`.
 */
import type { CheckpointEntry, EncodedEntry } from "../CheckpointStore.ts"
import { quote } from "./canonical.ts"

/** The name of the checkpoint file inside a checkpoint directory. */
export const TASKS_FILE = "tasks.jsonl"

// Which UTF-16 code units are lowercase hex digits: a table lookup per character checks a
// hash about 3x faster than an anchored regex (a million hashes per million-entry load).
const HEX = new Uint8Array(128)
for (const c of "0123456789abcdef") HEX[c.charCodeAt(0)] = 1

const isHex64 = (s: string): boolean => {
  if (s.length !== 64) return false
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i)
    if (c > 127 || HEX[c] === 0) return false
  }
  return true
}

/**
 * Checks that a parsed line is a version-1 entry. Returns the reason when it is not.
 */
export const invalidEntry = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "the line is not a JSON object"
  }
  const o = value as Record<string, unknown>
  if (!Object.hasOwn(o, "v")) return "the entry has no \"v\" field"
  if (o.v !== 1) return `unsupported entry format version ${JSON.stringify(o.v) ?? String(o.v)}`
  if (typeof o.hash !== "string" || !isHex64(o.hash)) return "\"hash\" is not 64 lowercase hex digits"
  if (typeof o.app !== "string") return "\"app\" is not a string"
  if (o.version !== null && typeof o.version !== "string") return "\"version\" is neither a string nor null"
  if (!Object.hasOwn(o, "input")) return "the entry has no \"input\" field"
  if (o.deleted !== undefined) {
    // A tombstone: `"deleted": true` and no result.
    if (o.deleted !== true) return "\"deleted\" is not true (a tombstone has \"deleted\": true)"
    if (Object.hasOwn(o, "result")) return "a tombstone (\"deleted\": true) has a \"result\""
  } else if (!Object.hasOwn(o, "result")) return "the entry has no \"result\" field"
  if (typeof o.time !== "string") return "\"time\" is not a string"
  return undefined
}

/**
 * Whether an unterminated, unparsable last line can be a torn write: what a write cut short
 * leaves is the start of an entry, which starts with "{" (after a byte order mark or JSON
 * whitespace, if any). Any other such line (a text or binary file that is not a checkpoint)
 * is an error.
 */
export const mayBeTorn = (line: string): boolean => {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 123) return true
    // A byte order mark at the start, or JSON whitespace: space, tab, carriage return.
    if (!((c === 0xfeff && i === 0) || c === 32 || c === 9 || c === 13)) return false
  }
  return false
}

/**
 * Why a line is not an entry: a blank line (skipped on load), a torn last line (an
 * unterminated, unparsable line that starts like an entry: an interrupted write, skipped on
 * load with a warning), or a corrupt line (loading fails), with the reason. A class, so that
 * `lineRule` can return either this or the parsed entry (a plain object from `JSON.parse`,
 * never an instance of it) with no wrapper allocated per good line.
 */
export class LineFault {
  constructor(readonly kind: "blank" | "torn" | "corrupt", readonly reason: string) {}
}

/** The verdict on a blank line. */
export const BLANK_LINE = new LineFault("blank", "a blank line (skipped on load)")

/** The verdict on a torn last line. */
export const TORN_LINE = new LineFault(
  "torn",
  "a torn last line (an interrupted write); loadable: the library skips it with a warning"
)

const NOT_JSON = new LineFault("corrupt", "the line is not valid JSON")

/**
 * The line rule of the JSON Lines checkpoint file, the one the loader applies and the public
 * `CheckpointFile.checkLine` exposes (so `dfk verify` and `dfk repair` judge lines exactly as
 * a load does): a blank line is skipped; any other line must parse as JSON and be a version-1
 * entry (`invalidEntry`), except that an unterminated last line that does not parse and
 * starts like an entry (`mayBeTorn`) is a torn write. Returns the parsed entry, or why the
 * line is not one. `terminated`: whether the line ended with a newline.
 */
export const lineRule = (line: string, terminated: boolean): CheckpointEntry | LineFault => {
  // Blank lines are skipped; a line that starts with "{" (every entry) needs no trim.
  if (line.length === 0 || (line.charCodeAt(0) !== 123 && line.trim() === "")) return BLANK_LINE
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return !terminated && mayBeTorn(line) ? TORN_LINE : NOT_JSON
  }
  const invalid = invalidEntry(value)
  return invalid === undefined ? value as CheckpointEntry : new LineFault("corrupt", invalid)
}

// The fixed middle of the lines of one app and version: `","app":…,"version":…,"input":`.
const infixes = new Map<string, string>()
const infixOf = (app: string, version: string | null): string => {
  const key = version === null ? app : app + "\u0000" + version
  let infix = version === null ? infixes.get(app) : infixes.get(key)
  if (infix === undefined) {
    infix = "\",\"app\":" + quote(app) + ",\"version\":" + (version === null ? "null" : quote(version)) + ",\"input\":"
    if (infixes.size > 4096) infixes.clear()
    infixes.set(version === null ? app : key, infix)
  }
  return infix
}

const HEAD = "{\"v\":1,\"hash\":\""

/**
 * The line of an encoded entry, newline included: its input and result texts go in as they
 * are. Built with one `join`, which makes a flat string (concatenation would keep a rope of
 * its pieces, half again as large).
 */
export const encodedLine = (entry: EncodedEntry): string =>
  entry.deleted === true ? tombstoneLine(entry) : [
    HEAD,
    entry.hash,
    infixOf(entry.app, entry.version),
    entry.input,
    ",\"result\":",
    entry.result,
    ",\"time\":",
    quote(entry.time),
    "}\n"
  ].join("")

/** The line of an encoded tombstone, newline included: `"deleted":true` where a result would be. */
const tombstoneLine = (entry: EncodedEntry): string =>
  HEAD + entry.hash + infixOf(entry.app, entry.version) + entry.input + ",\"deleted\":true,\"time\":" +
  quote(entry.time) + "}\n"

/** The line of an entry object (or a tombstone), newline included. */
export const entryLine = (entry: CheckpointEntry): string =>
  JSON.stringify(
    entry.deleted === true
      ? {
        v: 1,
        hash: entry.hash,
        app: entry.app,
        version: entry.version,
        input: entry.input,
        deleted: true,
        time: entry.time
      }
      : {
        v: 1,
        hash: entry.hash,
        app: entry.app,
        version: entry.version,
        input: entry.input,
        result: entry.result,
        time: entry.time
      }
  ) + "\n"
