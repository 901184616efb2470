/**
 * Several processes on one `runDir` (test/fixtures/concurrent-run.ts, started at the same
 * moment): run directories are never shared, each checkpoint holds exactly its own process's
 * inputs, and a later run resumes from all of them.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll } from "vitest"
import { makeTempDir, readJsonLines, startFixture, valueOf } from "../fixtures/child.ts"

const temps: Array<string> = []
afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})
const tempDir = (prefix: string) => {
  const dir = makeTempDir(prefix)
  temps.push(dir)
  return dir
}

describe("concurrency", () => {
  it("two processes started at once on one runDir get distinct run dirs; a third resumes from both", async () => {
    const runDir = path.join(tempDir("effect-dfk-procs-"), "runinfo")
    const PER = 100
    const ROUNDS = 5
    const a = startFixture("concurrent-run.ts", [runDir, "0", String(PER), String(ROUNDS)])
    const b = startFixture("concurrent-run.ts", [runDir, String(PER), String(PER), String(ROUNDS)])
    await Promise.all([a, b].map((c) => c.waitFor((lines) => lines.includes("ready"), "it was ready")))
    // Both start their kernels at the same moment.
    a.process.stdin!.write("go\n")
    b.process.stdin!.write("go\n")
    const [exitA, exitB] = await Promise.all([a.exited, b.exited])
    assert.strictEqual(exitA.code, 0, a.stderr())
    assert.strictEqual(exitB.code, 0, b.stderr())

    // Each kernel of each process got its own run dir, and its checkpoint holds exactly its own inputs.
    const runs = [...a.lines, ...b.lines].filter((l) => l.startsWith("run ")).map((l) => {
      const [, dir, list] = l.split(" ")
      return { dir: dir!, inputs: list!.split(",").map(Number) }
    })
    assert.strictEqual(runs.length, 2 * ROUNDS)
    assert.strictEqual(
      new Set(runs.map((r) => r.dir)).size,
      runs.length,
      `a run dir was shared: ${runs.map((r) => r.dir)}`
    )
    const onDisk = fs.readdirSync(runDir).sort()
    assert.deepStrictEqual(onDisk, runs.map((r) => path.basename(r.dir)).sort())
    for (const run of runs) {
      const { entries, tail } = readJsonLines(path.join(run.dir, "checkpoint", "tasks.jsonl"))
      assert.strictEqual(tail, "")
      assert.deepStrictEqual(entries.map((e) => e.input).sort((x, y) => x - y), run.inputs)
    }
    assert.strictEqual(Number(valueOf(a.lines, "bodies")), PER)
    assert.strictEqual(Number(valueOf(b.lines, "bodies")), PER)

    // A third run resumes from both (default resume: every checkpoint under runDir).
    const c = startFixture("concurrent-run.ts", [runDir, "0", String(2 * PER), "1"])
    c.process.stdin!.write("go\n")
    const exitC = await c.exited
    assert.strictEqual(exitC.code, 0, c.stderr())
    assert.strictEqual(Number(valueOf(c.lines, "bodies")), 0, "the third run ran bodies")
    const stats = JSON.parse(valueOf(c.lines, "stats")!)
    assert.strictEqual(stats.fromCheckpoint, 2 * PER)
    assert.strictEqual(stats.misses, 0)
    const third = c.lines.find((l) => l.startsWith("run "))!.split(" ")[1]!
    assert.notInclude(runs.map((r) => r.dir), third)
    const carried = readJsonLines(path.join(third, "checkpoint", "tasks.jsonl")).entries
    assert.strictEqual(new Set(carried.map((e) => e.input)).size, 2 * PER)
  }, 120_000)
})
