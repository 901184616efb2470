/**
 * Inputs and checkpoint files for the benchmarks. Everything is deterministic, so two
 * runs measure the same bytes.
 *
 * @module
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { memoKey } from "../src/internal/canonical.ts"
import { encodedLine } from "../src/internal/format.ts"
import { DATA_DIR } from "./util.ts"

/** A small, seeded pseudo-random generator (mulberry32). */
export const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** One record of a larger input: a mix of strings, numbers, booleans, arrays and nesting. */
const record = (next: () => number, i: number) => ({
  id: i,
  name: `sample-${Math.floor(next() * 1e6).toString(36)}`,
  score: Math.round(next() * 1e6) / 1e3,
  ok: next() > 0.5,
  tags: ["alpha", "beta", "gamma"].slice(0, 1 + Math.floor(next() * 3)),
  pos: { lat: Math.round(next() * 18e4) / 1e3 - 90, lon: Math.round(next() * 36e4) / 1e3 - 180 }
})

/**
 * A JSON-able app input whose JSON text is about `bytes` long: an object with a few
 * scalar fields and an array of records. `bytes <= 64` gives `{ x, label }`.
 */
export const inputOfSize = (bytes: number): Record<string, unknown> => {
  if (bytes <= 64) return { x: 42, label: "small" }
  const next = rng(bytes)
  const value: { sample: string; threshold: number; dryRun: boolean; rows: Array<unknown> } = {
    sample: "run-A",
    threshold: 0.25,
    dryRun: false,
    rows: []
  }
  while (JSON.stringify(value).length < bytes) value.rows.push(record(next, value.rows.length))
  return value
}

/** The name of the app the load benchmarks use. */
export const LOAD_APP = "bench_load"

/** The checkpoint line (newline included) for input `{ i }` of the load benchmark: result `i * 2`. */
export const loadLine = (i: number, time: string): string => {
  const input = { i }
  const inputJson = JSON.stringify(input)
  return encodedLine({
    hash: memoKey(LOAD_APP, null, input, []),
    app: LOAD_APP,
    version: null,
    input: inputJson,
    result: String(i * 2),
    time
  })
}

/** The run dir whose `000/checkpoint/tasks.jsonl` holds `n` small entries. */
export const loadRunDir = (n: number): string => path.join(DATA_DIR, `load-${n}`)

/** The checkpoint dir of `loadRunDir(n)`. */
export const loadCheckpointDir = (n: number): string => path.join(loadRunDir(n), "000", "checkpoint")

const FORMAT = "v1-small-1"

/**
 * Writes the checkpoint of `n` small entries (exactly as the kernel writes them) unless a
 * complete one is already there. Returns its `tasks.jsonl` path.
 */
export const ensureLoadFile = async (n: number): Promise<string> => {
  const dir = loadCheckpointDir(n)
  const file = path.join(dir, "tasks.jsonl")
  const stamp = path.join(loadRunDir(n), "complete")
  if (existsSync(file) && existsSync(stamp) && readFileSync(stamp, "utf8") === `${FORMAT} ${n}`) return file
  mkdirSync(dir, { recursive: true })
  const tmp = `${file}.tmp`
  const out = createWriteStream(tmp)
  const base = Date.UTC(2025, 0, 1)
  let chunk = ""
  for (let i = 0; i < n; i++) {
    chunk += loadLine(i, new Date(base + i).toISOString())
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()))
      chunk = ""
    }
  }
  out.write(chunk)
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
  renameSync(tmp, file)
  writeFileSync(stamp, `${FORMAT} ${n}`)
  return file
}
