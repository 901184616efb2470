/**
 * The version lives in package.json; deno.json's "version" (for `deno publish`) must equal
 * it, and `dfk --version` prints it (cli/main.ts reads package.json).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(root, file), "utf8"))

describe("version", () => {
  it("package.json, deno.json and dfk --version agree", () => {
    const version: unknown = readJson("package.json").version
    assert.isString(version)
    assert.match(version as string, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/)
    assert.strictEqual(readJson("deno.json").version, version, "deno.json's version is package.json's")
    const out = execFileSync(path.join(root, "node_modules", ".bin", "tsx"), [
      path.join(root, "cli", "main.ts"),
      "--version"
    ], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" }
    })
    assert.strictEqual(out.trim(), version)
  }, 60_000)

  it("no other source spells it out", () => {
    const version = readJson("package.json").version as string
    const quoted = JSON.stringify(version)
    for (const dir of ["cli", "scripts", "src"]) {
      for (const name of fs.readdirSync(path.join(root, dir), { recursive: true }) as Array<string>) {
        if (!name.endsWith(".ts")) continue
        const text = fs.readFileSync(path.join(root, dir, name), "utf8")
        assert.notInclude(text, quoted, `${dir}/${name} spells out the version ${quoted}: read it from package.json`)
      }
    }
    assert.notInclude(fs.readFileSync(path.join(root, "mod.ts"), "utf8"), quoted)
  })
})
