/**
 * `errors`: the four errors are `Schema.TaggedError` classes with DESIGN.md's fields.
 */
import { assert, describe, it } from "@effect/vitest"
import { AppCacheError, BadCheckpoint, CheckpointError, ConfigurationError } from "effect-dfk"
import * as Schema from "effect/Schema"

describe("errors", () => {
  it("errors are Schema.TaggedError classes with the named fields", () => {
    const bc = new BadCheckpoint({ path: "/p", line: 3, reason: "bad" })
    assert.strictEqual(bc._tag, "BadCheckpoint")
    assert.strictEqual(bc.path, "/p")
    assert.strictEqual(bc.line, 3)
    assert.strictEqual(bc.reason, "bad")
    assert.instanceOf(bc, Error)
    const decoded = Schema.decodeUnknownSync(BadCheckpoint)({ _tag: "BadCheckpoint", path: "/q", line: 0, reason: "r" })
    assert.instanceOf(decoded, BadCheckpoint)
    assert.deepStrictEqual(Schema.encodeSync(BadCheckpoint)(bc), {
      _tag: "BadCheckpoint",
      path: "/p",
      line: 3,
      reason: "bad"
    })
    for (const E of [ConfigurationError, BadCheckpoint, CheckpointError, AppCacheError] as const) {
      assert.isTrue(Schema.isSchema(E), E.name)
      assert.property(E.fields, "_tag", E.name)
    }
    assert.includeMembers(Object.keys(BadCheckpoint.fields), ["path", "line", "reason"])
    assert.strictEqual(new ConfigurationError({ field: "f", reason: "r" })._tag, "ConfigurationError")
    assert.strictEqual(new CheckpointError({ path: "p", reason: "r" })._tag, "CheckpointError")
    assert.isTrue(Schema.is(AppCacheError)(new AppCacheError({ app: "a", reason: "r" })))
  })
})
