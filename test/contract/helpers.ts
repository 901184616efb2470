/**
 * Shared by the contract suite (test/contract/, DESIGN.md checked section by section from
 * outside): only what `effect-dfk` (mod.ts) exports, the files the kernel writes and the
 * lines it logs. The memo keys are recomputed here with an RFC 8785 serializer and sha256 of
 * this file's own, independent of the library's canonical JSON.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformPath from "@effect/platform/Path"
import { App, CheckpointFiles, Dfk } from "effect-dfk"
import type { DfkConfig, DfkStats } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { platform } from "../util.ts"

// ---------------------------------------------------------------------------------------------
// An independent RFC 8785 (JCS) serializer and the memo key it gives
// ---------------------------------------------------------------------------------------------

const jcsString = (s: string): string => {
  let out = "\""
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const ch = s[i]!
    if (ch === "\"") out += "\\\""
    else if (ch === "\\") out += "\\\\"
    else if (c === 0x08) out += "\\b"
    else if (c === 0x09) out += "\\t"
    else if (c === 0x0a) out += "\\n"
    else if (c === 0x0c) out += "\\f"
    else if (c === 0x0d) out += "\\r"
    else if (c < 0x20) out += "\\u" + c.toString(16).padStart(4, "0")
    else out += ch
  }
  return out + "\""
}

const utf16Compare = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i)
    if (d !== 0) return d
  }
  return a.length - b.length
}

export const jcs = (v: unknown): string => {
  if (v === null) return "null"
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error("not JSON")
    return Object.is(v, -0) ? "0" : String(v)
  }
  if (typeof v === "string") return jcsString(v)
  if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]"
  if (typeof v === "object") {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort(utf16Compare)
    return "{" + keys.map((k) => jcsString(k) + ":" + jcs(o[k])).join(",") + "}"
  }
  throw new Error("not JSON")
}

export const sha256 = (text: string) => crypto.createHash("sha256").update(text, "utf8").digest("hex")

/** DESIGN §3: `sha256(canonicalJson([name, version ?? null, encodedInput minus ignoreForCache keys]))`. */
export const expectedKey = (name: string, version: string | null, encodedInput: unknown) =>
  sha256(jcs([name, version, encodedInput]))

// ---------------------------------------------------------------------------------------------
// Kernels, checkpoint files, apps
// ---------------------------------------------------------------------------------------------

export type Files = Layer.Layer<CheckpointFiles, never, FileSystem.FileSystem | PlatformPath.Path>

/** A kernel layer; with `files` undefined no `CheckpointFiles` is in the context (default resume). */
export const kernel = (config: DfkConfig, files?: Files) =>
  (files === undefined ? Dfk.layer(config) : Dfk.layer(config).pipe(Layer.provide(files))).pipe(
    Layer.provide(platform)
  )

/** The error of a kernel on `<root>/r` that loads `dirs`. */
export const loadError = (root: string, dirs: ReadonlyArray<string>, config: DfkConfig = {}) =>
  Effect.flip(
    Dfk.runDir.pipe(Effect.provide(kernel({ runDir: path.join(root, "r"), ...config }, CheckpointFiles.layer(dirs))))
  )

export const tasksFile = (runDir: string) => path.join(runDir, "checkpoint", "tasks.jsonl")
export const rawLines = (runDir: string): Array<string> =>
  fs.readFileSync(tasksFile(runDir), "utf8").split("\n").filter((l) => l !== "")

/** Writes a checkpoint dir by hand, as another tool would. */
export const writeCheckpoint = (dir: string, lines: ReadonlyArray<string>) => {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "tasks.jsonl"), lines.map((l) => l + "\n").join(""))
}
export const entryLine = (app: string, version: string | null, input: unknown, result: unknown) =>
  JSON.stringify({
    v: 1,
    hash: expectedKey(app, version, input),
    app,
    version,
    input,
    result,
    time: new Date(0).toISOString()
  })

export const stats = (
  tasks: number,
  hits: number,
  misses: number,
  checkpointed: number,
  pending: number
): DfkStats => ({
  tasks,
  hits,
  misses,
  checkpointed,
  pending
})

/**
 * Polls `Dfk.stats`, letting the other fibers run in between, until `done` holds (or 10,000
 * polls have passed: the caller's assertion then fails). For calls forked into the kernel.
 */
export const statsWhen = (done: (s: DfkStats) => boolean): Effect.Effect<DfkStats, never, Dfk> => {
  const poll: Effect.Effect<DfkStats, never, Dfk> = Effect.zipLeft(Dfk.stats, Effect.yieldNow())
  return Effect.repeat(poll, { until: done, times: 10_000 })
}

/** A cached `x * 2` app that counts its body's runs in `c.n`. */
export const makeDouble = (c: { n: number }, name = "double", version?: string) =>
  App.make(
    { name, input: Schema.Number, output: Schema.Number, cache: true, ...(version === undefined ? {} : { version }) },
    (x) => Effect.sync(() => (c.n++, x * 2))
  )

export const makePlain = (c: { n: number }) =>
  App.make({ name: "plain", input: Schema.Number, output: Schema.Number }, (x) => Effect.sync(() => (c.n++, x)))

export class Boom extends Schema.TaggedError<Boom>()("Boom", { n: Schema.Number }) {}

export const modes = ["task_exit", "periodic", "dfk_exit", "manual"] as const
