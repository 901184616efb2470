/**
 * `deno doc --lint mod.ts`, as part of `npm run check`: every public export documented, no
 * public type referring to one that is not public. One kind of report is left out: a
 * `private-type-ref` to a type of another package (Effect's `Effect`, `Context.Tag`,
 * `Schema.TaggedError` …). Deno stops reporting those for `npm:`/`jsr:` imports
 * (denoland/deno#34339); ours resolve through `node_modules` as files, so it still does. A
 * reference to a type declared in this repository is never left out, except one to a class's
 * base, a `const` that exists only to give the superclass expression an explicit type of
 * another package (`const DfkBase: Context.TagClass<…> = Context.Tag(…)<…>()`, which JSR's
 * fast check needs for `deno publish` without `--allow-slow-types`): it stands for that type.
 *
 * Usage: `tsx scripts/doc_lint.ts` (exits 1 on any report that counts).
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const deno = path.join(root, "node_modules", ".bin", "deno")

/**
 * Whether `node` is a class base for fast check: `const XBase: A.B<…> = …`, its type a
 * qualified name (a type of another package, reached through its namespace import).
 */
const isTypedBase = (node: ts.VariableDeclaration, superclasses: ReadonlySet<string>): boolean =>
  ts.isIdentifier(node.name) && superclasses.has(node.name.text) && node.type !== undefined &&
  ts.isTypeReferenceNode(node.type) && ts.isQualifiedName(node.type.typeName)

/**
 * The names of the types, interfaces, classes and functions declared in `mod.ts` and under
 * `src/`, without the typed class bases (`isTypedBase`).
 */
const declaredHere = (): Set<string> => {
  const names = new Set<string>()
  const files = [path.join(root, "mod.ts")]
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name)
      if (fs.statSync(file).isDirectory()) walk(file)
      else if (file.endsWith(".ts")) files.push(file)
    }
  }
  walk(path.join(root, "src"))
  for (const file of files) {
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
    const superclasses = new Set<string>()
    for (const statement of source.statements) {
      if (!ts.isClassDeclaration(statement)) continue
      for (const clause of statement.heritageClauses ?? []) {
        for (const type of clause.types) if (ts.isIdentifier(type.expression)) superclasses.add(type.expression.text)
      }
    }
    const visit = (node: ts.Node) => {
      if (
        (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ts.isClassDeclaration(node) ||
          ts.isFunctionDeclaration(node) || ts.isEnumDeclaration(node)) && node.name !== undefined
      ) names.add(node.name.text)
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && !isTypedBase(node, superclasses)) {
        names.add(node.name.text)
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return names
}

const run = spawnSync(deno, ["doc", "--lint", "mod.ts"], {
  cwd: root,
  encoding: "utf8",
  env: { ...process.env, NO_COLOR: "1" }
})
const output = (run.stdout + run.stderr).replace(/\x1b\[[0-9;]*m/g, "") // eslint-disable-line no-control-regex
// Reports start with "error[rule]: message" and run until the next one.
const reports = output.split(/\n(?=error\[)/).filter((r) => r.startsWith("error["))
const ours = declaredHere()
const counted = reports.filter((report) => {
  const ref = /^error\[private-type-ref\]: public type '.*' references private type '([^']+)'/.exec(report)
  return ref === null || ours.has(ref[1]!)
})
if (reports.length === 0 && run.status !== 0 && !/Checked|no documentation lint/i.test(output)) {
  // Not a lint report: deno itself failed.
  console.error(output)
  process.exit(1)
}
for (const report of counted) console.error(report.trim() + "\n")
console.log(
  `deno doc --lint mod.ts: ${counted.length} errors (${
    reports.length - counted.length
  } references to other packages' types left out)`
)
process.exit(counted.length === 0 ? 0 : 1)
