/**
 * A/B of the call paths of two or more library trees in one process: memo hits and misses
 * (as B1 and B2 make them), the trees' rounds interleaved, CPU time, min and median of the
 * rounds. On a shared machine, where whole benchmark runs move by ±30%, this is how to tell
 * whether a change to the kernel helps.
 *
 * ```sh
 * npx tsx bench/ab.ts HEAD~3 .              # git revisions or directories holding mod.ts + src/
 * npx tsx bench/ab.ts ea5f5c3 . --what hit  # hit (default: miss), --rounds 15, --batches 20
 * npx tsx bench/ab.ts ea5f5c3 . --what task_exit     # misses written one by one (B5 at c=1)
 * npx tsx bench/ab.ts ea5f5c3 . --what task_exit256  # 256 at once, group commit (B5 at c=256)
 * ```
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, rmSync } from "node:fs"
import * as path from "node:path"
import { compileLibrary } from "./compile.ts"
import { DATA_DIR, ROOT } from "./util.ts"

const argv = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(name)
  return i === -1 ? fallback : argv[i + 1] ?? fallback
}
const what = option("--what", "miss")
const WHATS = ["hit", "miss", "task_exit", "task_exit256"]
if (!WHATS.includes(what)) throw new Error(`--what must be one of ${WHATS.join(", ")}, not ${what}`)
const taskExit = what.startsWith("task_exit")
const rounds = Number(option("--rounds", "15"))
const batches = Number(option("--batches", "20"))
const trees = argv.filter((a, i) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--"))
if (trees.length < 2) throw new Error("Give two or more trees: git revisions or directories with mod.ts and src/")

/** A directory holding the tree: itself, or a `git archive` of a revision under bench/.data/. */
const treeDir = (tree: string): string => {
  if (existsSync(path.join(tree, "mod.ts"))) return path.resolve(tree)
  const rev = execFileSync("git", ["rev-parse", "--short", tree], { cwd: ROOT, encoding: "utf8" }).trim()
  const dir = path.join(DATA_DIR, `rev-${rev}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  // (sql.ts, the effect-dfk/sql entry the bench compiles too, when the revision has it.)
  const sql = execFileSync("git", ["ls-tree", "--name-only", rev, "sql.ts"], { cwd: ROOT, encoding: "utf8" }).trim()
  execFileSync("sh", ["-c", `git archive ${rev} mod.ts src ${sql} | tar -x -C ${JSON.stringify(dir)}`], { cwd: ROOT })
  return dir
}

const quiet = Logger.minimumLogLevel(LogLevel.Warning)
const SmallInput = Schema.Struct({ x: Schema.Number, label: Schema.String })
const body = ({ x }: typeof SmallInput.Type) => Effect.succeed(x * 2)
const N = 1000
const loop = <A, E, R>(step: () => Effect.Effect<A, E, R>) =>
  what === "task_exit256"
    ? Effect.forEach(Array.from({ length: N }), step, { concurrency: 256, discard: true })
    : Effect.gen(function*() {
      for (let i = 0; i < N; i++) yield* step()
    })
let seq = 0

const setups = []
for (const tree of trees) {
  const dir = treeDir(tree)
  const { lib } = await compileLibrary(dir)
  const runDir = path.join(DATA_DIR, `ab-runs-${setups.length}`)
  rmSync(runDir, { recursive: true, force: true })
  const rt = ManagedRuntime.make(
    Layer.merge(
      lib.Dfk.layer(taskExit ? { runDir, checkpointMode: "task_exit" } : { runDir }).pipe(
        Layer.provide(lib.CheckpointFiles.none),
        Layer.provide(Layer.merge(NodeContext.layer, quiet))
      ),
      quiet
    )
  )
  const app = lib.App.make({ name: "bench_cached", input: SmallInput, output: Schema.Number, cache: true }, body)
  const step = what === "hit" ? () => app({ x: 1, label: "small" }) : () => app({ x: seq++, label: "small" })
  // (Misses of one tree must not be hits of another: each kernel has a run dir of its own,
  // loading nothing.)
  await rt.runPromise(app({ x: 1, label: "small" }))
  setups.push({ tree, rt, step, runDir, samples: [] as Array<number> })
}

for (let round = 0; round < rounds; round++) {
  for (const s of setups) {
    const before = process.cpuUsage()
    for (let b = 0; b < batches; b++) await s.rt.runPromise(loop(s.step))
    const used = process.cpuUsage(before)
    // The first two rounds warm up.
    if (round > 1) s.samples.push((used.user + used.system) * 1000 / (N * batches))
  }
}
for (const s of setups) {
  await s.rt.dispose()
  rmSync(s.runDir, { recursive: true, force: true })
  const sorted = s.samples.slice().sort((a, b) => a - b)
  const median = sorted[sorted.length >> 1]!
  console.log(`${what} ${s.tree}: min ${sorted[0]!.toFixed(0)} ns, median ${median.toFixed(0)} ns per call (CPU)`)
}
