/**
 * Every TypeScript snippet of the README runs: the first is examples/quickstart.ts verbatim
 * (compared here, then run twice to show the resume); the others are extracted and run.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
const tsx = path.join(root, "node_modules", ".bin", "tsx")
const blocks = (lang: string) =>
  [...readme.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!)

/** Runs a TypeScript file with tsx in `cwd`; returns stdout and stderr together. */
const runTs = (file: string, cwd: string) =>
  execFileSync(tsx, [file], {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }
  })

const inTempDir = <A>(f: (dir: string) => A): A => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-readme-"))
  try {
    return f(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("README", () => {
  it("has TypeScript snippets", () => {
    assert.isAtLeast(snippets.length, 2)
  })

  it("shows examples/quickstart.ts verbatim, and it resumes from its first run", () => {
    assert.strictEqual(snippets[0], fs.readFileSync(path.join(root, "examples", "quickstart.ts"), "utf8"))
    inTempDir((cwd) => {
      const script = path.join(root, "examples", "quickstart.ts")
      const first = runTs(script, cwd)
      const second = runTs(script, cwd)
      assert.include(first, "Done checkpointing 5 tasks")
      assert.notInclude(first, "Loaded")
      assert.include(second, "Loaded 5 results from 1 checkpoint")
      assert.include(second, "checkpointed to runinfo/001/checkpoint")
      const lines = fs.readFileSync(path.join(cwd, "runinfo", "001", "checkpoint", "tasks.jsonl"), "utf8").trim().split(
        "\n"
      )
      assert.deepStrictEqual(lines.map((l) => JSON.parse(l).result).sort(), [0, 2, 4, 6, 8])
    })
  }, 240_000)

  it("shows a checkpoint line that is a valid entry whose hash is the key of its app and input", async () => {
    const [json] = blocks("json")
    assert.isDefined(json)
    const entry = JSON.parse(json!)
    const { Effect } = await import("effect")
    const { Memo } = await import("effect-dfk")
    const { invalidEntry } = await import("../../src/internal/format.ts")
    assert.isUndefined(invalidEntry(entry))
    const key = Effect.runSync(Memo.key({ name: entry.app, version: entry.version, input: entry.input }))
    assert.strictEqual(entry.hash, key)
  })

  it("names only npm scripts and deno tasks that exist, and deno task check passes", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
    const deno = JSON.parse(fs.readFileSync(path.join(root, "deno.json"), "utf8"))
    const commands = blocks("sh").flatMap((b) => b.split("\n")).map((l) => l.replace(/#.*/, "").trim()).filter((l) =>
      l !== ""
    )
    assert.isAtLeast(commands.length, 4)
    for (const command of commands) {
      for (const part of command.split("&&").map((p) => p.trim())) {
        const npm = /^npm (?:run )?([\w:-]+)/.exec(part)
        const task = /^deno task ([\w:-]+)/.exec(part)
        if (npm !== null && npm[1] !== "ci" && npm[1] !== "test") assert.property(pkg.scripts, npm[1]!, part)
        else if (npm !== null && npm[1] === "test") assert.property(pkg.scripts, "test", part)
        else if (task !== null) assert.property(deno.tasks, task[1]!, part)
        else if (npm === null) assert.fail(`Unknown command in the README: ${part}`)
      }
    }
    // The cheap one runs for real: deno task check (deno check mod.ts).
    execFileSync(path.join(root, "node_modules", ".bin", "deno"), ["task", "check"], {
      cwd: root,
      stdio: "pipe",
      timeout: 120_000
    })
  }, 180_000)

  snippets.slice(1).forEach((snippet, i) => {
    it(`snippet ${i + 2} runs`, () => {
      const dir = path.join(root, ".tmp", "readme")
      fs.mkdirSync(dir, { recursive: true })
      const file = path.join(dir, `snippet-${i + 2}-${process.pid}.ts`)
      fs.writeFileSync(file, snippet)
      try {
        inTempDir((cwd) => runTs(file, cwd))
      } finally {
        fs.rmSync(file, { force: true })
      }
    }, 120_000)
  })
})
