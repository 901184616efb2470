/**
 * A checkpoint written under Node resumes under Deno, and the other way round, with
 * identical hashes and no app run again.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { readEntries } from "../util.ts"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const fixture = path.join(root, "test", "cross", "resume.ts")
const bin = (name: string) => path.join(root, "node_modules", ".bin", name)

const runOn = (runtime: "node" | "deno", runDir: string) => {
  const [cmd, args] = runtime === "node"
    ? [bin("tsx"), [fixture, runDir]]
    : [bin("deno"), ["run", "-A", "--quiet", fixture, runDir]]
  const out = execFileSync(cmd, args, { cwd: root, encoding: "utf8", timeout: 120_000 })
  return JSON.parse(out.trim().split("\n").at(-1)!)
}

describe("cross-runtime resume", () => {
  for (const [first, second] of [["node", "deno"], ["deno", "node"]] as const) {
    it(`a ${first} checkpoint resumes under ${second}`, () => {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-cross-"))
      try {
        const a = runOn(first, runDir)
        const b = runOn(second, runDir)
        assert.strictEqual(a.runtime, first)
        assert.strictEqual(b.runtime, second)
        assert.strictEqual(a.bodies, 6)
        assert.strictEqual(b.bodies, 0)
        assert.strictEqual(b.fromCheckpoint, 6)
        assert.deepStrictEqual(b.results, a.results)
        assert.deepStrictEqual(b.hashes, a.hashes)
        const written = readEntries(path.join(a.runDir, "checkpoint", "tasks.jsonl")).map((e) => e.hash).sort()
        const carried = readEntries(path.join(b.runDir, "checkpoint", "tasks.jsonl")).map((e) => e.hash).sort()
        assert.deepStrictEqual(written, [...a.hashes].sort())
        assert.deepStrictEqual(carried, written)
      } finally {
        fs.rmSync(runDir, { recursive: true, force: true })
      }
    }, 240_000)
  }
})
