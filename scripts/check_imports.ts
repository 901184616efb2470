/**
 * Checks that nothing internal is public (DESIGN §5), as part of `npm run check`:
 *
 * - `cli/` (the `dfk` command) imports the library only through its public API: `../mod.ts`
 *   and `../sql.ts` (the subpath `effect-dfk/sql`), or `effect-dfk` and `effect-dfk/sql`; of
 *   the repository's other files only its siblings in `cli/` and `../package.json` (its
 *   version), never a file under `src/` (neither `src/internal/*` nor `src/App.ts` …), and
 *   never `examples/` (the npm package ships `cli/`, not `examples/`);
 * - `examples/` imports the library only as `effect-dfk` and `effect-dfk/sql` (what a user
 *   writes), never a file under `src/` nor `mod.ts`; the one other relative import allowed is
 *   `examples/demo.ts` starting the demo, whose code is `cli/demo-workflow.ts`, shared with
 *   `dfk demo`;
 * - `mod.ts` exports no file under `src/internal/`.
 *
 * `test/` and `bench/` may import internals. Every import is checked: static, re-exports,
 * dynamic `import("…")` with a literal and `import type`. Prints one line per violation,
 * `file:line: message`, and exits with status 1 if there is any.
 *
 * Usage: `tsx scripts/check_imports.ts`
 *
 * @module
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The files outside `cli/` that `cli/` may import: the public entry points and the version. */
const CLI_IMPORTS: ReadonlyArray<string> = ["mod.ts", "sql.ts", "package.json"]

/** The package's subpaths (`package.json` `exports`). */
const SUBPATHS: ReadonlyArray<string> = ["effect-dfk/sql"]

/** Relative imports allowed in `examples/` besides their siblings: `file` → the resolved target. */
const EXAMPLE_EXCEPTIONS: ReadonlyArray<readonly [string, string]> = [
  ["examples/demo.ts", "cli/demo-workflow.ts"]
]

/** One import of a file: the specifier and its 1-based line. */
interface Import {
  readonly specifier: string
  readonly line: number
}

const importsOf = (file: string): Array<Import> => {
  const code = fs.readFileSync(file, "utf8")
  const source = ts.createSourceFile(file, code, ts.ScriptTarget.Latest, false)
  return ts.preProcessFile(code, true, true).importedFiles.map((ref) => ({
    specifier: ref.fileName,
    line: source.getLineAndCharacterOfPosition(ref.pos).line + 1
  }))
}

const listTs = (dir: string): Array<string> =>
  !fs.existsSync(dir) ? [] : fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : listTs(full)
    return /\.(m|c)?tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [full] : []
  })

/** `target` relative to the repository root, with `/` separators. */
const rel = (target: string): string => path.relative(root, target).split(path.sep).join("/")

const inside = (target: string, dir: string): boolean => rel(target) === dir || rel(target).startsWith(dir + "/")

/** The violation of one import of `file` (relative to the root), or `undefined`. */
export const violation = (file: string, specifier: string): string | undefined => {
  const isPath = specifier.startsWith("./") || specifier.startsWith("../") || specifier.startsWith("/")
  if (file === "mod.ts") {
    return isPath && inside(path.resolve(root, specifier), "src/internal")
      ? `mod.ts exports ${specifier}: nothing under src/internal/ is public`
      : undefined
  }
  const area = file.split("/")[0]
  if (specifier.startsWith("effect-dfk/") && !SUBPATHS.includes(specifier)) {
    return `${specifier}: the package has no such subpath; import "effect-dfk" or ${
      SUBPATHS.map((p) => `"${p}"`).join(", ")
    }`
  }
  if (!isPath) return undefined
  const target = rel(path.resolve(root, path.dirname(file), specifier))
  if (area === "cli") {
    if (inside(target, "src")) return `imports ${specifier}: cli/ uses only the public API (../mod.ts), not src/`
    if (inside(target, "examples")) {
      return `imports ${specifier}: cli/ must not import examples/ (the npm package has none)`
    }
    if (inside(target, "cli") || CLI_IMPORTS.includes(target)) return undefined
    return `imports ${specifier}: cli/ imports the public API (${
      CLI_IMPORTS.map((f) => `../${f}`).join(", ")
    }) and cli/ files only`
  }
  if (area === "examples") {
    if (inside(target, "src") || target === "mod.ts") {
      return `imports ${specifier}: examples/ import the library as "effect-dfk" only`
    }
    if (path.posix.dirname(target) === "examples") return undefined
    if (EXAMPLE_EXCEPTIONS.some(([from, to]) => from === file && to === target)) return undefined
    return `imports ${specifier}: examples/ import "effect-dfk" and their sibling files only`
  }
  return undefined
}

/** Every violation in the repository, as `file:line: message` lines. */
export const check = (): Array<string> => {
  const files = [path.join(root, "mod.ts"), ...listTs(path.join(root, "cli")), ...listTs(path.join(root, "examples"))]
  const out: Array<string> = []
  for (const full of files) {
    const file = rel(full)
    for (const { line, specifier } of importsOf(full)) {
      const problem = violation(file, specifier)
      if (problem !== undefined) out.push(`${file}:${line}: ${problem}`)
    }
  }
  return out
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)

if (isMain) {
  const problems = check()
  for (const line of problems) console.error(line)
  if (problems.length > 0) {
    console.error(
      `check_imports: ${problems.length} ${
        problems.length === 1 ? "import breaks" : "imports break"
      } the public API rule`
    )
    process.exit(1)
  }
}
