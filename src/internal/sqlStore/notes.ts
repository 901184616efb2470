/**
 * The SQL store's channel (PostgreSQL LISTEN/NOTIFY): the notifications sent, and what the
 * notifications heard said lately.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { CheckpointEntry, EncodedEntry } from "../../CheckpointStore.ts"
import { utf8ByteLength } from "../utf8.ts"
import type { SqlStoreContext } from "./context.ts"
import { chunks } from "./rows.ts"

// PostgreSQL: every process that writes an entry under a claim, or gives a claim up, tells
// the others on the channel `<prefix>events` (NOTIFY, delivered when its transaction
// commits). A notification is `<owner key>\n<runDir as JSON>\n<kind>\n<body>`: `r` given
// up without an entry (hashes, comma separated), `w` written (a JSON array of the entries,
// or of the hash alone for an entry too long to send). What they said is kept for a while
// (`notes`, by runDir NUL hash), so that a key written elsewhere is served from its
// notification. (Claims themselves are not announced: see `insertClaims`. A `c` note, which
// earlier versions sent, is ignored.)

// Hashes per notification: 100 of 64 characters, well under PostgreSQL's 8,000-byte payload.
const NOTIFY_CHUNK = 100
// The size of a notification (PostgreSQL takes payloads shorter than 8,000 bytes).
const PAYLOAD_BYTES = 7900
// What notifications said lately, for this many keys at most (the oldest are dropped; an
// entry kept is one short enough to be sent, under 8 kB).
const NOTES_MAX = 4096

/** What a notification said of a key: given up (`r`) or written (`w`, with its entry). */
export interface Note {
  readonly kind: "r" | "w"
  readonly at: number
  readonly entry: CheckpointEntry | undefined
}

/** Whether a value parsed from a notification is an entry. */
export const isEntry = (x: unknown): x is CheckpointEntry => {
  if (typeof x !== "object" || x === null) return false
  const e = x as Record<string, unknown>
  return typeof e.hash === "string" && typeof e.app === "string" &&
    (e.version === null || typeof e.version === "string") &&
    "input" in e && "result" in e && typeof e.time === "string"
}

/** The key of `hash` under `ns` in the notes. */
export const noteKey = (ns: string, hash: string): string => ns + "\u0000" + hash

/** Keeps `note` as the newest of `notes` (the oldest dropped past `NOTES_MAX`). */
export const setNote = (notes: Map<string, Note>, key: string, note: Note): void => {
  notes.delete(key)
  notes.set(key, note)
  if (notes.size > NOTES_MAX) notes.delete(notes.keys().next().value!)
}

/** The notifications one store sends. */
export interface Payloads {
  /** The head of a notification of `kind` under `ns` (this process's key, the runDir, the kind). */
  readonly head: (ns: string, kind: "r" | "w") => string
  /** The notifications that `hashes` under `ns` were given up without an entry (`r`). */
  readonly givenUpPayloads: (ns: string, hashes: ReadonlyArray<string>) => Array<string>
  /** The notifications that `entries` were written under `ns`: as many entries to one as fit. */
  readonly writtenPayloads: (ns: string, entries: ReadonlyArray<EncodedEntry>) => Array<string>
  /** Sends notifications (PostgreSQL; in a transaction, delivered at its commit). */
  readonly notify: (payloads: ReadonlyArray<string>) => Effect.Effect<void, SqlError>
}

/** The notifications of the store of `ctx`. */
export const makePayloads = (ctx: SqlStoreContext): Payloads => {
  const { channel, isPg, ownerKey, sql } = ctx
  const head = (ns: string, kind: "r" | "w") => `${ownerKey}\n${JSON.stringify(ns)}\n${kind}\n`

  /** The notifications that `hashes` under `ns` were given up (`r`). */
  const givenUpPayloads = (ns: string, hashes: ReadonlyArray<string>): Array<string> =>
    chunks(hashes, NOTIFY_CHUNK).map((chunk) => head(ns, "r") + chunk.join(","))

  /** The notifications that `entries` were written under `ns`: as many entries to one as fit. */
  const writtenPayloads = (ns: string, entries: ReadonlyArray<EncodedEntry>): Array<string> => {
    const h = head(ns, "w")
    const budget = PAYLOAD_BYTES - utf8ByteLength(h) - 2
    const out: Array<string> = []
    let parts: Array<string> = []
    let size = 0
    for (const e of entries) {
      let part = `{"hash":${JSON.stringify(e.hash)},"app":${JSON.stringify(e.app)},"version":${
        JSON.stringify(e.version)
      },"input":${e.input},"result":${e.result},"time":${JSON.stringify(e.time)}}`
      let n = part.length > budget ? budget + 1 : utf8ByteLength(part)
      if (n > budget) {
        part = JSON.stringify(e.hash)
        n = part.length
      }
      if (parts.length > 0 && size + n + 1 > budget) {
        out.push(h + "[" + parts.join(",") + "]")
        parts = []
        size = 0
      }
      parts.push(part)
      size += n + 1
    }
    if (parts.length > 0) out.push(h + "[" + parts.join(",") + "]")
    return out
  }

  /** Sends notifications (PostgreSQL; in a transaction, delivered at its commit). */
  const notify = (payloads: ReadonlyArray<string>): Effect.Effect<void, SqlError> =>
    !isPg || payloads.length === 0
      ? Effect.void
      : Effect.forEach(payloads, (p) => sql`SELECT pg_notify(${channel}, ${p})`, { discard: true })
  return { head, givenUpPayloads, writtenPayloads, notify }
}
