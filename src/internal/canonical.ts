/**
 * RFC 8785 (JCS) canonical JSON and the memo key. Internal: the public face is `Memo.ts`.
 */
import * as crypto from "node:crypto"

/** Thrown (and caught by callers) when a value has no JSON form. */
export class NotJson extends Error {
  constructor(readonly where: string, readonly what: string) {
    super(`${what} at ${where}`)
  }
}

const objectProto = Object.prototype

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === objectProto || proto === null
}

const describe = (value: unknown): string => {
  if (value === undefined) return "undefined"
  if (typeof value === "number") return String(value)
  if (typeof value === "bigint") return `a bigint (${value}n)`
  if (typeof value === "function") return "a function"
  if (typeof value === "symbol") return "a symbol"
  if (typeof value === "object" && value !== null) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name
    return typeof name === "string" && name !== "" ? `an instance of ${name}` : "a non-plain object"
  }
  return typeof value
}

const pathOf = (path: ReadonlyArray<string | number>): string => {
  let out = "$"
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `.${p}`
  return out
}

/** Thrown by the fast serializer when it meets anything unusual; the careful one then explains. */
const SLOW = { slow: true }
const MAX_FAST_DEPTH = 200

// The fast path: a copy of the value with every object's keys inserted in sorted order,
// which the engine's JSON.stringify then serializes (its string escapes and number form
// are RFC 8785's). Measured against a string-building serializer, it is about 2x faster
// for inputs of 1 KB and more (see bench/README.md). No path tracking, no cycle set (a depth
// bound stands in for it); anything unusual throws SLOW, and the careful serializer runs.
const sortedCopy = (v: unknown, depth: number): unknown => {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v
    case "number":
      if (v - v !== 0) throw SLOW
      return v
    case "object": {
      if (v === null) return v
      if (depth > MAX_FAST_DEPTH) throw SLOW
      if (Array.isArray(v)) {
        const n = v.length
        const out = new Array(n)
        for (let i = 0; i < n; i++) {
          const x = v[i]
          if (x === undefined) throw SLOW
          out[i] = sortedCopy(x, depth + 1)
        }
        return out
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== objectProto && proto !== null) throw SLOW
      const keys = Object.keys(v)
      let sorted = true
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        // An object enumerates array-index keys in numeric order whatever the insertion
        // order, and "__proto__" cannot be set as an own key by assignment: both go slow.
        const c = k.charCodeAt(0)
        if ((c >= 48 && c <= 57) || k === "__proto__") throw KEYS
        if (i > 0 && keys[i - 1]! > k) sorted = false
      }
      if (!sorted) keys.sort()
      const out: Record<string, unknown> = {}
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        const member = (v as Record<string, unknown>)[k]
        if (member !== undefined) out[k] = sortedCopy(member, depth + 1)
      }
      return out
    }
    default:
      throw SLOW
  }
}

/**
 * Serializes `value` as RFC 8785 canonical JSON: object keys sorted by UTF-16 code units,
 * numbers in ECMAScript form, strings escaped as `JSON.stringify` does, no whitespace.
 * Throws `NotJson` for anything JSON cannot hold. `undefined` object members are omitted
 * (as `JSON.stringify` does); `undefined` elsewhere is an error.
 */
export const canonicalJson = (value: unknown): string => {
  try {
    budget = SMALL_NODES
    return small(value)
  } catch (e) {
    if (e !== BIG && e !== SLOW) throw e
    if (e === SLOW) return careful(value)
  }
  try {
    return JSON.stringify(sortedCopy(value, 0))
  } catch (e) {
    if (e !== SLOW && e !== KEYS) throw e
    if (e === SLOW) return careful(value)
  }
  // Keys the sorted copy cannot order (integer-like ones, "__proto__"): build the string.
  try {
    budget = Infinity
    return small(value)
  } catch (e) {
    if (e !== SLOW && !(e instanceof RangeError)) throw e
    return careful(value)
  }
}

/** Thrown by the sorted copy for keys whose order an object would not keep. */
const KEYS = { keys: true }

/**
 * `canonicalJson` without throwing: the text, or the reason the value has no JSON form
 * (including nesting too deep for the serializer).
 */
export const tryCanonicalJson = (value: unknown): string | { readonly error: string } => {
  try {
    return canonicalJson(value)
  } catch (e) {
    if (e instanceof NotJson) return { error: e.message }
    if (e instanceof RangeError) return { error: "the value is nested too deeply" }
    throw e
  }
}

// The keys of an object in sorted order, each with its quoted form and colon, for the
// object shapes (lists of own keys, in enumeration order) seen lately: an app's inputs mostly
// share one or a few, and sorting and quoting keys cost as much as the rest of a small value.
interface Shape {
  readonly keys: ReadonlyArray<string>
  readonly order: ReadonlyArray<string>
  readonly quoted: ReadonlyArray<string>
}
const SHAPES = 16
const shapes: Array<Shape> = []
let nextShape = 0
const shapeOf = (keys: ReadonlyArray<string>): Shape => {
  const n = keys.length
  search: for (let s = 0; s < shapes.length; s++) {
    const known = shapes[s]!.keys
    if (known.length !== n) continue
    for (let i = 0; i < n; i++) if (known[i] !== keys[i]) continue search
    return shapes[s]!
  }
  const order = n > 1 ? [...keys].sort() : keys
  const shape: Shape = { keys, order, quoted: order.map((k) => JSON.stringify(k) + ":") }
  // Keys of very large objects are not kept (they would hold memory for little gain).
  if (n <= 64) {
    shapes[nextShape] = shape
    nextShape = (nextShape + 1) % SHAPES
  }
  return shape
}

// For small values (most app inputs) building the string directly is faster than a sorted
// copy (about 140 vs 800 ns for {"x":1}); past SMALL_NODES values it gives up (BIG) and the
// sorted copy takes over.
const BIG = { big: true }
const SMALL_NODES = 32
let budget = 0
const small = (v: unknown): string => {
  if (--budget < 0) throw BIG
  switch (typeof v) {
    case "string":
      return JSON.stringify(v)
    case "number":
      if (v - v !== 0) throw SLOW
      return "" + v
    case "boolean":
      return v ? "true" : "false"
    case "object": {
      if (v === null) return "null"
      if (Array.isArray(v)) {
        let out = "["
        for (let i = 0; i < v.length; i++) {
          const x = v[i]
          if (x === undefined) throw SLOW
          out += (i === 0 ? "" : ",") + small(x)
        }
        return out + "]"
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== objectProto && proto !== null) throw SLOW
      const shape = shapeOf(Object.keys(v))
      const order = shape.order
      let out = "{"
      let first = true
      for (let i = 0; i < order.length; i++) {
        const member = (v as Record<string, unknown>)[order[i]!]
        if (member === undefined) continue
        out += (first ? shape.quoted[i]! : "," + shape.quoted[i]!) + small(member)
        first = false
      }
      return out + "}"
    }
    default:
      throw SLOW
  }
}

// The careful serializer: tracks the path for error messages and detects cycles.
const careful = (value: unknown): string => {
  const ancestors: Array<object> = []
  const path: Array<string | number> = []
  const write = (v: unknown): string => {
    switch (typeof v) {
      case "string":
        return JSON.stringify(v)
      case "number":
        if (!Number.isFinite(v)) throw new NotJson(pathOf(path), `${describe(v)} has no JSON form`)
        return JSON.stringify(v)
      case "boolean":
        return v ? "true" : "false"
      case "object": {
        if (v === null) return "null"
        if (ancestors.includes(v)) throw new NotJson(pathOf(path), "a cycle")
        ancestors.push(v)
        let out: string
        if (Array.isArray(v)) {
          out = "["
          for (let i = 0; i < v.length; i++) {
            if (i > 0) out += ","
            path.push(i)
            out += write(v[i])
            path.pop()
          }
          out += "]"
        } else {
          if (!isPlainObject(v)) throw new NotJson(pathOf(path), `${describe(v)} has no JSON form`)
          const keys = Object.keys(v).sort()
          out = "{"
          let first = true
          for (const k of keys) {
            const member = (v as Record<string, unknown>)[k]
            if (member === undefined) continue
            if (!first) out += ","
            first = false
            path.push(k)
            out += JSON.stringify(k) + ":" + write(member)
            path.pop()
          }
          out += "}"
        }
        ancestors.pop()
        return out
      }
      default:
        throw new NotJson(pathOf(path), `${describe(v)} has no JSON form`)
    }
  }
  return write(value)
}

type OneShotHash = (algorithm: string, data: string, encoding: "hex") => string
const oneShot = (crypto as { hash?: OneShotHash }).hash

/**
 * Hex sha256 of a UTF-8 string: with the one-shot `crypto.hash` where the runtime has it
 * (Node 20.12+, Deno; about 2.5x faster for small inputs), else `createHash`.
 */
export const sha256Hex: (text: string) => string = typeof oneShot === "function"
  ? (text) => oneShot("sha256", text, "hex")
  : (text) => crypto.createHash("sha256").update(text).digest("hex")

/** Removes the ignored keys from an encoded input that is a plain object. */
export const withoutKeys = (encoded: unknown, ignore: ReadonlyArray<string>): unknown => {
  if (ignore.length === 0 || typeof encoded !== "object" || encoded === null || Array.isArray(encoded)) {
    return encoded
  }
  // A null prototype, so that an own `__proto__` key stays an ordinary member.
  const out: Record<string, unknown> = Object.create(null)
  for (const k of Object.keys(encoded)) {
    if (!ignore.includes(k)) out[k] = (encoded as Record<string, unknown>)[k]
  }
  return out
}

/**
 * The start of the hashed text of an app's keys: `[name,version,` (`keyFromJson` adds the
 * input and the closing bracket). Built once per app.
 */
export const keyPrefix = (name: string, version: string | null): string =>
  "[" + JSON.stringify(name) + "," + (version === null ? "null" : JSON.stringify(version)) + ","

/** The memo key from an app's `keyPrefix` and the canonical JSON of its (filtered) input. */
export const keyWithPrefix = (prefix: string, inputJson: string): string => sha256Hex(prefix + inputJson + "]")

/** The memo key of DESIGN §3 from the canonical JSON of the (already filtered) input. */
export const keyFromJson = (name: string, version: string | null, inputJson: string): string =>
  // `[name, version, input]`: the brackets and the two leading members are written directly;
  // only the input needs the general serializer.
  keyWithPrefix(keyPrefix(name, version), inputJson)

/** The memo key of DESIGN §3, from an already encoded input. Throws `NotJson`. */
export const memoKey = (
  name: string,
  version: string | null,
  encodedInput: unknown,
  ignore: ReadonlyArray<string>
): string => keyFromJson(name, version, canonicalJson(withoutKeys(encodedInput, ignore)))
