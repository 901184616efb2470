/**
 * `scripts/check_imports.ts` (run by `npm run check`): the repository passes it, and it
 * catches what it is meant to.
 */
import { assert, describe, it } from "@effect/vitest"
import { check, violation } from "../../scripts/check_imports.ts"

describe("check_imports", () => {
  it("finds no violation in the repository", () => {
    assert.deepStrictEqual(check(), [])
  })

  it("flags internals and src/ files in cli/ and examples/, examples/ and other repository files in cli/", () => {
    assert.isUndefined(violation("cli/verify.ts", "../mod.ts"))
    assert.isUndefined(violation("cli/store.ts", "../sql.ts"))
    assert.isUndefined(violation("cli/main.ts", "../package.json"))
    assert.isDefined(violation("cli/store.ts", "../scripts/build_npm.ts"))
    assert.isDefined(violation("cli/store.ts", "../test/e2e/sqlHarness.ts"))
    assert.isUndefined(violation("cli/verify.ts", "./common.ts"))
    assert.isUndefined(violation("cli/verify.ts", "effect/Effect"))
    assert.isDefined(violation("cli/verify.ts", "../src/internal/fileLoad.ts"))
    assert.isDefined(violation("cli/verify.ts", "../src/Memo.ts"))
    assert.isDefined(violation("cli/demo.ts", "../examples/demo.ts"))
    assert.isUndefined(violation("examples/quickstart.ts", "effect-dfk"))
    assert.isUndefined(violation("examples/quickstart.ts", "@effect/platform-node"))
    assert.isDefined(violation("examples/quickstart.ts", "../mod.ts"))
    assert.isDefined(violation("examples/quickstart.ts", "../src/App.ts"))
    assert.isDefined(violation("examples/quickstart.ts", "../cli/demo-workflow.ts"))
    assert.isUndefined(violation("examples/demo.ts", "../cli/demo-workflow.ts"))
    assert.isDefined(violation("examples/quickstart.ts", "effect-dfk/internal"))
    assert.isUndefined(violation("examples/quickstart.ts", "effect-dfk/sql"))
    assert.isUndefined(violation("cli/store.ts", "effect-dfk/sql"))
    assert.isUndefined(violation("mod.ts", "./src/App.ts"))
    assert.isDefined(violation("mod.ts", "./src/internal/kernel.ts"))
  })
})
