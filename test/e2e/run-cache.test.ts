/**
 * `scripts/run.mjs`, behind `npm run demo` and `npm run dfk`: the cache of compiled JavaScript
 * is keyed by the sources, so an edit, an added file or a changed `package.json` recompiles,
 * and an unchanged tree is reused; the compiled demo runs on plain `node`.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { cacheBase, cacheKey, ensureCompiled, rootDir, sourceFiles } from "../../scripts/run.mjs"

const tmpDirs: Array<string> = []
afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** A small source tree: mod.ts, src/, cli/, examples/demo.ts, package.json. */
const makeTree = (): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-run-cache-"))
  tmpDirs.push(root)
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
    fs.writeFileSync(path.join(root, file), text)
  }
  write("package.json", JSON.stringify({ name: "t", version: "1.0.0", type: "module" }))
  write("mod.ts", "export { two } from \"./src/two.ts\"\n")
  write("sql.ts", "export const sql: number = 1\n")
  write("src/two.ts", "export const two: number = 2\n")
  write("src/types.d.ts", "export type X = number\n")
  write("cli/main.ts", "import { two } from \"../mod.ts\"\nconsole.log(two satisfies number)\n")
  write("examples/demo.ts", "import \"../cli/main.ts\"\n")
  write("examples/other.ts", "export {}\n")
  return root
}

describe("scripts/run.mjs", () => {
  it("compiles mod.ts, sql.ts, examples/demo.ts, src/ and cli/ (no .d.ts, no other example)", () => {
    assert.deepStrictEqual(sourceFiles(makeTree()), [
      "cli/main.ts",
      "examples/demo.ts",
      "mod.ts",
      "sql.ts",
      "src/two.ts"
    ])
  })

  it("keys the cache by the sources: the same tree, the same key; an edit, a new file, package.json change it", () => {
    const root = makeTree()
    const key = cacheKey(root)
    assert.match(key, /^[0-9a-f]{16}$/)
    assert.strictEqual(cacheKey(root), key)
    assert.strictEqual(cacheKey(makeTree()), key, "the key does not depend on where the tree is")

    fs.writeFileSync(path.join(root, "src", "two.ts"), "export const two: number = 2 // edited\n")
    const edited = cacheKey(root)
    assert.notStrictEqual(edited, key)

    fs.writeFileSync(path.join(root, "cli", "extra.ts"), "export {}\n")
    const added = cacheKey(root)
    assert.notStrictEqual(added, edited)

    fs.renameSync(path.join(root, "cli", "extra.ts"), path.join(root, "cli", "renamed.ts"))
    assert.notStrictEqual(cacheKey(root), added)

    const before = cacheKey(root)
    fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "t", version: "1.0.1", type: "module" }))
    assert.notStrictEqual(cacheKey(root), before)

    const unrelated = cacheKey(root)
    fs.writeFileSync(path.join(root, "examples", "other.ts"), "export const y = 1\n")
    fs.writeFileSync(path.join(root, "README.md"), "# t\n")
    assert.strictEqual(cacheKey(root), unrelated, "files that are not compiled do not change the key")
  })

  it("compiles once, reuses the tree, recompiles after a source change, and the JavaScript runs", async () => {
    const root = makeTree()
    const first = await ensureCompiled(root)
    assert.isTrue(first.compiled)
    assert.strictEqual(path.dirname(first.dir), cacheBase(root))
    assert.isTrue(fs.existsSync(path.join(first.dir, "package.json")))
    const main = fs.readFileSync(path.join(first.dir, "cli", "main.js"), "utf8")
    assert.include(main, "\"../mod.js\"")
    assert.notInclude(main, "satisfies")
    assert.strictEqual(
      execFileSync("node", [path.join(first.dir, "examples", "demo.js")], { encoding: "utf8" }),
      "2\n"
    )

    const again = await ensureCompiled(root)
    assert.deepStrictEqual(again, { dir: first.dir, compiled: false })

    fs.writeFileSync(path.join(root, "src", "two.ts"), "export const two: number = 22\n")
    const changed = await ensureCompiled(root)
    assert.isTrue(changed.compiled)
    assert.notStrictEqual(changed.dir, first.dir)
    assert.strictEqual(
      execFileSync("node", [path.join(changed.dir, "examples", "demo.js")], { encoding: "utf8" }),
      "22\n"
    )
    assert.deepStrictEqual(
      fs.readdirSync(cacheBase(root)).filter((n) => n.startsWith(".")),
      [],
      "no half-compiled tree left"
    )
  })

  it("runs the repository's entry points through node scripts/run.mjs", () => {
    const out = execFileSync("node", [path.join(rootDir, "scripts", "run.mjs"), "cli/main.ts", "--version"], {
      cwd: rootDir,
      encoding: "utf8"
    })
    assert.strictEqual(
      out.trim(),
      JSON.parse(fs.readFileSync(path.join(rootDir, "package.json"), "utf8")).version
    )
    assert.throws(
      () =>
        execFileSync("node", [path.join(rootDir, "scripts", "run.mjs"), "bench/run.ts"], {
          cwd: rootDir,
          encoding: "utf8",
          stdio: "pipe"
        }),
      /not one of the compiled entry points/
    )
  })
})
