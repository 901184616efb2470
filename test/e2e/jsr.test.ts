/**
 * JSR readiness: deno.json names a scoped package with package.json's exports and publishes
 * only what exists of the library (`npm run check` runs `deno publish --dry-run`, which
 * passes without `--allow-slow-types`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(root, file), "utf8"))

describe("JSR", () => {
  it("deno.json is a scoped package with package.json's exports and an include list of files that exist", () => {
    const deno = readJson("deno.json")
    const pkg = readJson("package.json")
    assert.strictEqual(deno.name, "@effect-dfk/effect-dfk")
    assert.deepStrictEqual(deno.exports, pkg.exports)
    const include: Array<string> = deno.publish.include
    assert.includeMembers(include, ["mod.ts", "sql.ts", "src/", "README.md", "LICENSE"])
    for (const entry of include) assert.isTrue(fs.existsSync(path.join(root, entry)), `${entry} exists`)
    for (const target of Object.values(deno.exports) as Array<string>) {
      assert.isTrue(include.includes(target.replace(/^\.\//, "")), `${target} is published`)
    }
    // `npm test` runs the dry run (fast check included) through `npm run check`.
    assert.include(pkg.scripts.check, "npm run check:jsr")
    assert.match(pkg.scripts["check:jsr"], /^deno publish --dry-run /)
    assert.notInclude(pkg.scripts["check:jsr"], "--allow-slow-types")
  })
})
