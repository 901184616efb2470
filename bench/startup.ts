/**
 * Start-up (issue 15 item 3): how long a resumed demo run (every result from the checkpoint)
 * takes from the command to its exit, against a baseline measured in the same run.
 *
 * ```sh
 * npx tsx bench/startup.ts              # 7 reps of each, interleaved; writes bench/.data/startup.json
 * npx tsx bench/startup.ts --reps 11
 * ```
 *
 * It builds what it needs first: the npm package (`scripts/build_npm.ts`, into
 * `.tmp/bench-startup/npm/`), the cached JavaScript of `scripts/run.mjs`, and one complete demo
 * run dir (60 tasks, computed once). Then each rep runs, in a rotating order, each in a fresh
 * process (wall time from spawning to exit):
 *
 * - (a) **baseline**: `node baseline.mjs`, a tiny module that imports the built package
 *   (`npm/mod.js`) and `effect/Effect` and runs `Effect.runPromise(Effect.succeed(1))`;
 * - (b) **demo, tsx**: `tsx examples/demo.ts --run-dir D`, what `npm run demo` ran before;
 * - (c) **demo, cached JS**: `node scripts/run.mjs examples/demo.ts --run-dir D`, what
 *   `npm run demo` runs now;
 * - (d) **npm run demo**: the same through `npm run demo --`, npm's own start included;
 * - (e), (f) **dfk runs D**: `tsx cli/main.ts runs D` and `node scripts/run.mjs cli/main.ts runs D`
 *   (`npm run dfk`, before and now).
 *
 * `D` is a fresh copy of the complete run dir for every demo rep, so each resumes from exactly
 * one checkpoint (a resumed run adds a run dir of its own, which later reps would load too);
 * each demo rep's output must say 60 results from the checkpoint and 0 computed. Medians,
 * and each one's ratio to the baseline's median; the machine (`nproc`, CPU model) and the load
 * average before and after.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ensureCompiled } from "../scripts/run.mjs"
import { DATA_DIR, describeMachine, ROOT, table } from "./util.ts"

const args = process.argv.slice(2)
const repsAt = args.indexOf("--reps")
const REPS = repsAt >= 0 ? Number(args[repsAt + 1]) : 7
if (!Number.isInteger(REPS) || REPS < 1) {
  console.error("--reps needs a positive integer")
  process.exit(2)
}

const WORK = path.join(ROOT, ".tmp", "bench-startup")
const NPM_DIR = path.join(WORK, "npm")
const BASELINE = path.join(WORK, "baseline.mjs")
const PRISTINE = path.join(WORK, "pristine")
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx")
const RUNNER = path.join(ROOT, "scripts", "run.mjs")

const env = (() => {
  const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  for (const key of Object.keys(e)) if (key.startsWith("DEMO_") || key.startsWith("DFK_")) delete e[key]
  return e
})()

const sh = (command: string, argv: ReadonlyArray<string>): { ms: number; stdout: string } => {
  const t0 = performance.now()
  const r = spawnSync(command, argv, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 16 << 20 })
  const ms = performance.now() - t0
  if (r.status !== 0) {
    throw new Error(`${command} ${argv.join(" ")} exited with ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`)
  }
  return { ms, stdout: r.stdout }
}

// --- Build what is needed -------------------------------------------------------------------
console.log("Building the npm package, the cached JavaScript and one complete demo run dir …")
fs.rmSync(WORK, { recursive: true, force: true })
fs.mkdirSync(WORK, { recursive: true })
execFileSync(process.execPath, ["--import", "tsx", "scripts/build_npm.ts", "--out-dir", NPM_DIR], {
  cwd: ROOT,
  stdio: "inherit"
})
fs.writeFileSync(
  BASELINE,
  [
    "// The baseline of bench/startup.ts: import the built package and run one Effect.",
    "import \"./npm/mod.js\"",
    "import * as Effect from \"effect/Effect\"",
    "if (await Effect.runPromise(Effect.succeed(1)) !== 1) process.exit(1)",
    ""
  ].join("\n")
)
await ensureCompiled()
sh(process.execPath, [RUNNER, "examples/demo.ts", "--run-dir", PRISTINE, "--progress", "none"])

let copies = 0
/** A fresh copy of the complete run dir. */
const freshRunDir = (): string => {
  const dir = path.join(WORK, `run-${copies++}`)
  fs.cpSync(PRISTINE, dir, { recursive: true })
  return dir
}

const ALL_HITS = /^Done: 60 tasks, 60 results from checkpoint, 0 computed now/m

interface Variant {
  readonly id: string
  readonly label: string
  readonly run: () => number
}

const demoRep = (command: string, argv: (dir: string) => ReadonlyArray<string>) => (): number => {
  const dir = freshRunDir()
  const { ms, stdout } = sh(command, argv(dir))
  if (!ALL_HITS.test(stdout)) throw new Error(`The demo was not served from the checkpoint:\n${stdout}`)
  fs.rmSync(dir, { recursive: true, force: true })
  return ms
}

const variants: ReadonlyArray<Variant> = [
  { id: "a", label: "(a) baseline: node baseline.mjs (npm/mod.js + one Effect)", run: () => sh("node", [BASELINE]).ms },
  {
    id: "b",
    label: "(b) resumed demo, before: tsx examples/demo.ts",
    run: demoRep(TSX, (dir) => ["examples/demo.ts", "--run-dir", dir])
  },
  {
    id: "c",
    label: "(c) resumed demo, now: node scripts/run.mjs examples/demo.ts",
    run: demoRep("node", (dir) => [RUNNER, "examples/demo.ts", "--run-dir", dir])
  },
  {
    id: "d",
    label: "(d) resumed demo, now, with npm's start: npm run demo",
    run: demoRep("npm", (dir) => ["run", "--silent", "demo", "--", "--run-dir", dir])
  },
  {
    id: "e",
    label: "(e) dfk runs, before: tsx cli/main.ts runs",
    run: () => sh(TSX, ["cli/main.ts", "runs", PRISTINE]).ms
  },
  {
    id: "f",
    label: "(f) dfk runs, now: node scripts/run.mjs cli/main.ts runs",
    run: () => sh("node", [RUNNER, "cli/main.ts", "runs", PRISTINE]).ms
  }
]

// --- Measure, interleaved -------------------------------------------------------------------
const machine = describeMachine()
const loadBefore = os.loadavg()
console.log(
  `${os.cpus().length} cores (nproc ${execFileSync("nproc", { encoding: "utf8" }).trim()}), ${machine.cpu}, ` +
    `Node ${machine.node}, effect ${machine.effect}, commit ${machine.commit}; ` +
    `load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`
)
// One untimed round first (page cache, the compiled tree, npm's own caches).
for (const v of variants) v.run()
const samples = new Map<string, Array<number>>(variants.map((v) => [v.id, []]))
for (let rep = 0; rep < REPS; rep++) {
  for (let i = 0; i < variants.length; i++) {
    const v = variants[(rep + i) % variants.length]!
    samples.get(v.id)!.push(v.run())
  }
  process.stdout.write(`rep ${rep + 1}/${REPS}\r`)
}
const loadAfter = os.loadavg()

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const medians = Object.fromEntries(variants.map((v) => [v.id, median(samples.get(v.id)!)]))
const base = medians.a!
console.log(
  "\n" + table([
    ["", "median ms", "min–max ms", "× baseline"],
    ...variants.map((v) => {
      const xs = samples.get(v.id)!
      return [
        v.label,
        medians[v.id]!.toFixed(0),
        `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`,
        (medians[v.id]! / base).toFixed(2)
      ]
    })
  ], "lrrr")
)
const ratio = (id: string) => medians[id]! / base
console.log(
  `\n(b)/(a) = ${ratio("b").toFixed(2)}, (c)/(a) = ${ratio("c").toFixed(2)} (target ≤ 2: ` +
    `${ratio("c") <= 2 ? "PASS" : "FAIL"}), (d)/(a) = ${ratio("d").toFixed(2)}; ` +
    `dfk runs: (e)/(a) = ${ratio("e").toFixed(2)}, (f)/(a) = ${ratio("f").toFixed(2)}`
)
console.log(
  `${REPS} reps each, interleaved; load average before ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, ` +
    `after ${loadAfter.map((l) => l.toFixed(2)).join(" ")} (${os.cpus().length} cores)`
)

fs.mkdirSync(DATA_DIR, { recursive: true })
fs.writeFileSync(
  path.join(DATA_DIR, "startup.json"),
  JSON.stringify(
    {
      machine,
      nproc: os.cpus().length,
      loadBefore,
      loadAfter,
      reps: REPS,
      variants: variants.map((v) => ({
        id: v.id,
        label: v.label,
        samplesMs: samples.get(v.id),
        medianMs: medians[v.id],
        ratio: ratio(v.id)
      }))
    },
    null,
    2
  ) + "\n"
)
fs.rmSync(WORK, { recursive: true, force: true })
