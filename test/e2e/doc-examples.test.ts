/**
 * Every `@example` in the library's JSDoc really runs: the examples are extracted from
 * mod.ts and src/*.ts, written as modules, and imported one after another by a single
 * runner process, in which `console.assert` throws (so a false assertion fails the test).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const sources = [
  "mod.ts",
  ...fs.readdirSync(path.join(root, "src")).filter((f) => f.endsWith(".ts")).map((f) => `src/${f}`)
]

interface Example {
  readonly source: string
  readonly title: string
  readonly code: string
}

const examples: Array<Example> = sources.flatMap((source) => {
  const text = fs.readFileSync(path.join(root, source), "utf8")
  return [...text.matchAll(/@example ([^\n]*)\n((?:\s*\*[^\n]*\n)*?)\s*\*\s*```ts\n([\s\S]*?)\n\s*\*\s*```/g)].map((
    m
  ) => ({
    source,
    title: m[1]!.trim(),
    code: m[3]!.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n")
  }))
})

describe("JSDoc examples", () => {
  it("every exported class, function and constant of src/ has a titled example", () => {
    for (const source of sources.filter((s) => s.startsWith("src/"))) {
      const text = fs.readFileSync(path.join(root, source), "utf8")
      const exported = [...text.matchAll(/^export (?:class|const|function) (\w+)/gm)].map((m) => m[1]!)
      for (const name of exported) {
        const at = text.search(new RegExp(`^export (?:class|const|function) ${name}\\b`, "m"))
        const doc = text.slice(text.lastIndexOf("/**", at), at)
        assert.include(doc, "@example ", `${source}: ${name} has no @example`)
        assert.include(doc, "@since ", `${source}: ${name} has no @since`)
        assert.match(doc, /@category [a-z]/, `${source}: ${name} has no lowercase @category`)
      }
    }
  })

  it("all run", () => {
    assert.isAtLeast(examples.length, 10)
    const dir = path.join(root, ".tmp", `doc-examples-${process.pid}`)
    fs.mkdirSync(dir, { recursive: true })
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-doc-"))
    try {
      const files = examples.map((example, i) => {
        const file = path.join(dir, `example-${i}.ts`)
        fs.writeFileSync(file, example.code + "\n")
        return { file, label: `${example.source}: ${example.title}` }
      })
      const runner = path.join(dir, "runner.ts")
      fs.writeFileSync(
        runner,
        `console.assert = (ok: unknown, ...message: Array<unknown>) => {
  if (!ok) throw new Error("Assertion failed: " + message.join(" "))
}
const examples: Array<{ file: string; label: string }> = ${JSON.stringify(files)}
for (const { file, label } of examples) {
  try {
    await import(file)
  } catch (e) {
    console.error("FAILED " + label)
    throw e
  }
  console.log("ok " + label)
}
`
      )
      const out = execFileSync(path.join(root, "node_modules", ".bin", "tsx"), [runner], {
        cwd,
        encoding: "utf8",
        timeout: 180_000
      })
      assert.strictEqual(out.split("\n").filter((l) => l.startsWith("ok ")).length, examples.length)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      fs.rmSync(cwd, { recursive: true, force: true })
      for (const tmp of ["effect-dfk-doc-store", "effect-dfk-doc-files", "effect-dfk-doc-dfk", "effect-dfk-doc-app"]) {
        fs.rmSync(path.join(os.tmpdir(), tmp), { recursive: true, force: true })
      }
    }
  }, 240_000)
})
