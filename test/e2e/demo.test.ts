/**
 * The demo (`npm run demo`: examples/demo.ts compiled once to cached JavaScript by
 * scripts/run.mjs and run on plain `node`) run as a child process, as a user runs it:
 * a second run serves every result from the checkpoint, and a run stopped with Ctrl-C
 * resumes and computes only what was not done.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const runner = path.join(root, "scripts", "run.mjs")
const demo = path.join(root, "examples", "demo.ts")
const TASKS = 12
const ARGS = ["--size", "small"]

const tmpDirs: Array<string> = []
const tmpDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-demo-"))
  tmpDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true })
})

interface Step {
  readonly n: number
  readonly total: number
  readonly task: string
  readonly computed: boolean
}

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly steps: ReadonlyArray<Step>
}

interface Summary {
  readonly tasks: number
  readonly fromCheckpoint: number
  readonly computed: number
  readonly digest: string
}

const STEP = /^step (\d+)\/(\d+) done: (.+) \((computed in [\d,]+ ms|from checkpoint)\)$/

const parseSteps = (stdout: string): Array<Step> =>
  stdout.split("\n").flatMap((line) => {
    const m = STEP.exec(line)
    return m === null
      ? []
      : [{ n: Number(m[1]), total: Number(m[2]), task: m[3]!, computed: m[4] !== "from checkpoint" }]
  })

const parseSummary = (stdout: string): Summary => {
  const done = /^Done: (\d+) tasks, (\d+) results from checkpoint, (\d+) computed now, in /m.exec(stdout)
  const digest = /^results digest: ([0-9a-f]{16})$/m.exec(stdout)
  assert.isNotNull(done, `no summary line in:\n${stdout}`)
  assert.isNotNull(digest, `no digest line in:\n${stdout}`)
  return { tasks: Number(done![1]), fromCheckpoint: Number(done![2]), computed: Number(done![3]), digest: digest![1]! }
}

/** Starts the demo in its own process group (as a shell does), stdout and stderr piped. */
const start = (runDir: string): ChildProcess => {
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith("DEMO_")) delete env[key]
  return spawn("node", [runner, demo, ...ARGS, "--run-dir", runDir], {
    cwd: root,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"]
  })
}

/** Collects a child's output until it exits; `onLine` sees each stdout line as it comes. */
const finish = (child: ChildProcess, onLine: (line: string, stdout: string) => void = () => {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    let partial = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      partial += chunk
      const lines = partial.split("\n")
      partial = lines.pop()!
      for (const line of lines) onLine(line, stdout)
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, steps: parseSteps(stdout) }))
  })

const runToEnd = async (runDir: string): Promise<Run> => {
  const run = await finish(start(runDir))
  assert.strictEqual(run.code, 0, `the demo failed:\n${run.stdout}\n${run.stderr}`)
  return run
}

const checkpointLines = (runDir: string, run: string): Array<{ app: string }> =>
  fs.readFileSync(path.join(runDir, run, "checkpoint", "tasks.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line))

// One uninterrupted run from scratch, shared by both tests as the reference.
let reference: Promise<{ runDir: string; run: Run }> | undefined
const firstRun = () => (reference ??= (async () => {
  const runDir = tmpDir()
  return { runDir, run: await runToEnd(runDir) }
})())

describe("Demo", () => {
  it("a second run serves every result from the checkpoint and executes nothing", async () => {
    const { run: first, runDir } = await firstRun()
    const one = parseSummary(first.stdout)
    assert.deepStrictEqual([one.tasks, one.fromCheckpoint, one.computed], [TASKS, 0, TASKS])
    assert.strictEqual(first.steps.length, TASKS)
    assert.isTrue(first.steps.every((s) => s.computed && s.total === TASKS))
    assert.deepStrictEqual(first.steps.map((s) => s.n), Array.from({ length: TASKS }, (_, i) => i + 1))
    assert.strictEqual(new Set(first.steps.map((s) => s.task)).size, TASKS)
    assert.strictEqual(checkpointLines(runDir, "000").length, TASKS)

    const second = await runToEnd(runDir)
    const two = parseSummary(second.stdout)
    assert.deepStrictEqual([two.tasks, two.fromCheckpoint, two.computed], [TASKS, TASKS, 0])
    assert.strictEqual(second.steps.length, TASKS)
    assert.isTrue(second.steps.every((s) => !s.computed), second.stdout)
    assert.match(second.stdout, /about [\d.]+ s of compute saved/)
    assert.strictEqual(two.digest, one.digest)
    // Results served from the checkpoint are carried forward into the second run's checkpoint.
    assert.strictEqual(checkpointLines(runDir, "001").length, TASKS)
  }, 180_000)

  it("a run stopped with Ctrl-C exits 130 and the next run computes only what was not done", async () => {
    const { run: uninterrupted } = await firstRun()
    const runDir = tmpDir()
    const K = 3
    const child = start(runDir)
    let sent = false
    const stopped = await finish(child, (line) => {
      if (!sent && STEP.test(line) && parseSteps(line)[0]!.n >= K) {
        sent = true
        process.kill(-child.pid!, "SIGINT") // the whole process group, as Ctrl-C in a terminal
      }
    })
    assert.isTrue(sent, `the demo ended before ${K} steps:\n${stopped.stdout}\n${stopped.stderr}`)
    assert.strictEqual(stopped.code, 130, `${stopped.stdout}\n${stopped.stderr}`)
    assert.match(stopped.stdout, /^Interrupted: \d+ of 12 tasks done/m)
    assert.notMatch(stopped.stdout, /^Done: /m)
    const doneBefore = stopped.steps.map((s) => s.task)
    assert.isAtLeast(doneBefore.length, K)
    assert.isBelow(doneBefore.length, TASKS)

    const resumed = await runToEnd(runDir)
    const summary = parseSummary(resumed.stdout)
    assert.strictEqual(summary.tasks, TASKS)
    assert.isAtLeast(summary.fromCheckpoint, doneBefore.length)
    assert.isBelow(summary.fromCheckpoint, TASKS)
    assert.strictEqual(summary.computed, TASKS - summary.fromCheckpoint)
    // Every task reported done before Ctrl-C comes from the checkpoint; only the others run.
    const fromCheckpoint = new Set(resumed.steps.filter((s) => !s.computed).map((s) => s.task))
    for (const task of doneBefore) assert.isTrue(fromCheckpoint.has(task), `${task} was computed again`)
    assert.strictEqual(fromCheckpoint.size, summary.fromCheckpoint)
    assert.strictEqual(resumed.steps.filter((s) => s.computed).length, summary.computed)
    // And the results are those of a run that was never interrupted.
    assert.strictEqual(summary.digest, parseSummary(uninterrupted.stdout).digest)
  }, 180_000)
})
