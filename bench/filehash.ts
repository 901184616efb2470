/**
 * B11 (issue 14): hashing a file for `File.Content`. A 1 GiB file is made in a temporary dir
 * (deleted after), hashed by the library (`Schema.encode(File.Content)` outside a kernel, so
 * every rep reads the whole file) and by `sha256sum` in the same run, reps interleaved after
 * one untimed read that puts the file in the page cache; then 1,000 calls of a cached app
 * naming the file, under one kernel (one hash for all of them). Wall time, medians.
 *
 * `npx tsx bench/filehash.ts [--mib N] [--reps N]` on its own, or `npm run bench -- --only B11`.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import type { Library } from "./compile.ts"

/** What B11 measured (milliseconds; `ratio`: library time over `sha256sum`'s, lower is better). */
export interface FileHashResult {
  readonly bytes: number
  readonly libraryMs: number
  readonly sha256sumMs: number
  readonly ratio: number
  readonly sameHash: boolean
  /** 1,000 cached calls naming the file under one kernel (one hash), in all. */
  readonly thousandCallsMs: number
  readonly libraryMsAll: ReadonlyArray<number>
  readonly sha256sumMsAll: ReadonlyArray<number>
  /** `openssl dgst -sha256` of the file (the same OpenSSL code as node:crypto), once per rep; `undefined` without openssl. */
  readonly opensslMs: number | undefined
}

const median = (xs: ReadonlyArray<number>) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!

const time = async <A>(f: () => Promise<A>): Promise<[number, A]> => {
  const start = performance.now()
  const value = await f()
  return [performance.now() - start, value]
}

/** Runs B11 with the library `lib` (its public module) over a file of `mib` MiB, `reps` reps each. */
export const benchFileHash = async (
  lib: Pick<Library, "App" | "CheckpointFiles" | "Dfk" | "File">,
  options: { readonly mib: number; readonly reps: number; readonly log?: (text: string) => void }
): Promise<FileHashResult> => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "effect-dfk-filehash-"))
  try {
    const file = path.join(dir, "big.bin")
    const block = randomBytes(16 * 1024 * 1024)
    const fd = openSync(file, "w")
    for (let written = 0; written < options.mib * 1024 * 1024; written += block.length) {
      writeSync(fd, block, 0, Math.min(block.length, options.mib * 1024 * 1024 - written))
    }
    closeSync(fd)
    const bytes = options.mib * 1024 * 1024
    options.log?.(`B11 hashing a ${options.mib} MiB file ...`)
    const quiet = Logger.minimumLogLevel(LogLevel.Warning)
    const ours = () =>
      Effect.runPromise(
        Schema.encode(lib.File.Content)(file).pipe(Effect.provide(NodeContext.layer), Effect.map((e) => e.sha256))
      )
    const theirs = async () =>
      (await promisify(execFile)("sha256sum", [file], { encoding: "utf8" })).stdout.split(" ")[0]!
    await theirs() // untimed: the file into the page cache
    const libraryMsAll: Array<number> = []
    const sha256sumMsAll: Array<number> = []
    let sameHash = true
    const openssl = async () => {
      try {
        return (await time(() => promisify(execFile)("openssl", ["dgst", "-sha256", file], { encoding: "utf8" })))[0]
      } catch {
        return undefined
      }
    }
    const opensslMsAll: Array<number> = []
    for (let rep = 0; rep < options.reps; rep++) {
      const o = await openssl()
      if (o !== undefined) opensslMsAll.push(o)
      // Alternating which goes first.
      const pair = rep % 2 === 0 ? [ours, theirs] : [theirs, ours]
      const [a, b] = [await time(pair[0]!), await time(pair[1]!)]
      const [mine, sums] = rep % 2 === 0 ? [a, b] : [b, a]
      libraryMsAll.push(mine[0])
      sha256sumMsAll.push(sums[0])
      sameHash &&= mine[1] === sums[1]
    }
    const app = lib.App.make(
      {
        name: "bench_filehash",
        input: Schema.Struct({ data: lib.File.Content, i: Schema.Number }),
        output: Schema.Number,
        cache: true
      },
      ({ i }) => Effect.succeed(i)
    )
    const kernel = lib.Dfk.layer({ runDir: path.join(dir, "runs") }).pipe(
      Layer.provide(lib.CheckpointFiles.none),
      Layer.provide(Layer.merge(NodeContext.layer, quiet))
    )
    const [thousandCallsMs] = await time(() =>
      Effect.runPromise(
        Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) => app({ data: file, i }), {
          concurrency: 64
        }).pipe(Effect.provide(Layer.merge(kernel, quiet)))
      )
    )
    const libraryMs = median(libraryMsAll)
    const sha256sumMs = median(sha256sumMsAll)
    return {
      bytes,
      libraryMs,
      sha256sumMs,
      ratio: libraryMs / sha256sumMs,
      sameHash,
      thousandCallsMs,
      libraryMsAll,
      sha256sumMsAll,
      opensslMs: opensslMsAll.length === 0 ? undefined : median(opensslMsAll)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2)
  const option = (name: string, fallback: number) => {
    const i = argv.indexOf(name)
    return i === -1 ? fallback : Number(argv[i + 1])
  }
  const lib = await import("../mod.ts")
  const r = await benchFileHash(lib, { mib: option("--mib", 1024), reps: option("--reps", 5), log: console.error })
  const mibs = (ms: number) => (r.bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)
  console.log(
    `B11 ${r.bytes / 1024 / 1024} MiB: library ${r.libraryMs.toFixed(0)} ms (${mibs(r.libraryMs)} MiB/s), ` +
      `sha256sum ${r.sha256sumMs.toFixed(0)} ms (${mibs(r.sha256sumMs)} MiB/s): ${r.ratio.toFixed(2)}x ` +
      `(target <= 1.2x), same hash: ${r.sameHash}; openssl dgst -sha256 ${r.opensslMs?.toFixed(0) ?? "-"} ms; ` +
      `1,000 calls naming it under one kernel: ` +
      `${r.thousandCallsMs.toFixed(0)} ms`
  )
  console.log(
    `  reps: library ${r.libraryMsAll.map((x) => x.toFixed(0)).join(", ")}; ` +
      `sha256sum ${r.sha256sumMsAll.map((x) => x.toFixed(0)).join(", ")}`
  )
}
