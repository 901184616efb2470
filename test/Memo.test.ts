import { assert, describe, it } from "@effect/vitest"
import { Memo } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import { createHash } from "node:crypto"

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")

/** A plain reference for RFC 8785 on JSON values: keys sorted by UTF-16 code units, recursively. */
const reference = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`).join(",")}}`
  }
  return JSON.stringify(v === 0 ? 0 : v)
}

/** The same members inserted in another order (a different object shape, the same value). */
const reordered = (v: unknown, seed: number): unknown => {
  if (Array.isArray(v)) return v.map((x, i) => reordered(x, seed + i))
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v)
    const rotated = keys.slice(seed % (keys.length || 1)).concat(keys.slice(0, seed % (keys.length || 1))).reverse()
    const out: Record<string, unknown> = Object.create(null)
    for (const k of rotated) out[k] = reordered((v as Record<string, unknown>)[k], seed + 1)
    return out
  }
  return v
}

describe("Memo", () => {
  it.effect("pins the key of a known input to an independently computed hex value", () =>
    Effect.gen(function*() {
      const key = yield* Memo.key({ name: "slow_double", input: { x: 1 } })
      // sha256 of the UTF-8 bytes of ["slow_double",null,{"x":1}], computed with Python's hashlib.
      assert.strictEqual(key, "108f567c66d5bb9116ee84dee6a8429e9828b8f4eb1880ca0a6fe51c22420eb2")
      assert.strictEqual(key, sha256("[\"slow_double\",null,{\"x\":1}]"))
    }))

  it.effect("sorts keys, keeps non-ASCII text raw and puts the version in the key", () =>
    Effect.gen(function*() {
      const key = yield* Memo.key({ name: "app", version: "2", input: { b: { z: true, y: null }, a: [1, 2.5, "é"] } })
      // Python: json.dumps(..., ensure_ascii=False, separators=(",", ":"), sort_keys=True)
      assert.strictEqual(key, "dda6be7967e9d3b87e5b85094d9acc220c338e7e499c188add46c31e697e2498")
    }))

  it.effect("leaves the ignored keys out", () =>
    Effect.gen(function*() {
      const a = yield* Memo.key({ name: "f", input: { x: 1, sleepMs: 10 }, ignoreForCache: ["sleepMs"] })
      const b = yield* Memo.key({ name: "f", input: { x: 1, sleepMs: 99 }, ignoreForCache: ["sleepMs"] })
      const c = yield* Memo.key({ name: "f", input: { x: 1 } })
      assert.strictEqual(a, b)
      assert.strictEqual(a, c)
    }))

  it("serializes numbers in ECMAScript form and sorts by UTF-16 code units (RFC 8785)", () => {
    const json = (v: unknown) => Either.getOrThrow(Memo.canonicalJson(v))
    assert.strictEqual(json([1e21, 1e-7, -0, 0.1, 100, 5e-324]), "[1e+21,1e-7,0,0.1,100,5e-324]")
    // "\u20ac" (U+20AC) sorts before "\ud83d\ude00" (U+1F600) by UTF-16 code units, though not by code points.
    const keys = Object.keys(JSON.parse(json({ "\ud83d\ude00": 1, "\u20ac": 2, "a": 3, "B": 4 })))
    assert.deepStrictEqual(keys, ["B", "a", "\u20ac", "\ud83d\ude00"])
    assert.strictEqual(json({ s: "line\nquote\"tab\t\u0001" }), "{\"s\":\"line\\nquote\\\"tab\\t\\u0001\"}")
    assert.strictEqual(json({ a: undefined, b: 1 }), "{\"b\":1}")
  })

  it("agrees with a plain reference on random JSON values, whatever the order members were inserted in", () => {
    const json = (v: unknown) => Either.getOrThrow(Memo.canonicalJson(v))
    // Many shapes one after another (more than any cache of recent shapes holds), the same
    // keys in other orders, keys that prefix one another, objects with many keys.
    const keyName = fc.constantFrom("a", "b", "ab", "ba", "x", "label", "é", "€", "😀", "B", "_", "a b", "10", "2")
    const leaf = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ maxLength: 8 }),
      // Any UTF-16 code units (controls, quotes, backslashes, lone surrogates), short and long.
      fc.string({ unit: "binary", maxLength: 80 }),
      fc.string({
        unit: fc.constantFrom("a", "\"", "\\", "\n", "\u0000", "\u001f", "\ud800", "\udc00", "\u2028"),
        maxLength: 70
      }),
      fc.boolean(),
      fc.constant(null)
    )
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { maxDepth: 4, withCrossShrink: true },
        leaf,
        fc.array(tie("node"), { maxLength: 4 }),
        fc.dictionary(keyName, tie("node"), { maxKeys: 6 }),
        fc.dictionary(fc.string({ maxLength: 4 }), leaf, { minKeys: 20, maxKeys: 90 }),
        fc.dictionary(fc.string({ unit: "binary", maxLength: 6 }), leaf, { maxKeys: 5 })
      )
    })).node
    fc.assert(
      fc.property(value, fc.nat(50), (v, seed) => {
        const expected = reference(v)
        assert.strictEqual(json(v), expected)
        assert.strictEqual(json(reordered(v, seed)), expected)
        assert.strictEqual(json(JSON.parse(JSON.stringify(v))), expected)
      }),
      { numRuns: 400 }
    )
  })

  it("refuses values JSON cannot hold", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const bad of [NaN, Infinity, [undefined], cyclic, new Map(), 1n, () => 1, { d: new Date(0) }]) {
      assert.isTrue(Either.isLeft(Memo.canonicalJson(bad)), `accepted ${String(bad)}`)
    }
  })

  it.effect("fails with AppCacheError for an input without a JSON form", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Memo.key({ name: "f", input: { x: NaN } }))
      assert.strictEqual(error._tag, "AppCacheError")
      assert.strictEqual(error.app, "f")
      assert.include(error.reason, "$.x")
    }))

  it.effect("treats an own __proto__ key as data", () =>
    Effect.gen(function*() {
      const input = JSON.parse("{\"__proto__\":{\"polluted\":1},\"x\":1}")
      const withKey = yield* Memo.key({ name: "f", input })
      const without = yield* Memo.key({ name: "f", input: { x: 1 } })
      assert.notStrictEqual(withKey, without)
      const ignored = yield* Memo.key({ name: "f", input, ignoreForCache: ["__proto__"] })
      assert.strictEqual(ignored, without)
      assert.isUndefined(({} as Record<string, unknown>).polluted)
    }))
})
