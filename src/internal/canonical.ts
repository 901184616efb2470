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
// Deeper than this the fast serializer gives up (SLOW): a cycle is found by the careful one.
const MAX_FAST_DEPTH = 200

/**
 * Serializes `value` as RFC 8785 canonical JSON: object keys sorted by UTF-16 code units,
 * numbers in ECMAScript form, strings escaped as `JSON.stringify` does, no whitespace.
 * Throws `NotJson` for anything JSON cannot hold. `undefined` object members are omitted
 * (as `JSON.stringify` does); `undefined` elsewhere is an error.
 */
export const canonicalJson = (value: unknown): string => {
  try {
    return fast(value, 0)
  } catch (e) {
    // Anything unusual, or nesting too deep for the stack: the careful serializer says what.
    if (e !== SLOW && !(e instanceof RangeError)) throw e
    return careful(value)
  }
}

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
// share a few (records in an array share one), and sorting and quoting keys would otherwise
// cost as much as the rest of the value.
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
  // The default sort compares UTF-16 code units, as RFC 8785 orders keys.
  const order = n > 1 ? [...keys].sort() : keys
  const shape: Shape = { keys, order, quoted: order.map((k) => quote(k) + ":") }
  // Keys of very large objects are not kept (they would hold memory for little gain).
  if (n <= 64) {
    shapes[nextShape] = shape
    nextShape = (nextShape + 1) % SHAPES
  }
  return shape
}

// A string in JSON: most are short and need no escape, so they are quoted as they are
// (a call of JSON.stringify per string costs more than the check); JSON.stringify, whose
// escapes are RFC 8785's, for the others and for surrogates (a lone one is escaped).
export const quote = (s: string): string => {
  const n = s.length
  if (n > 64) return JSON.stringify(s)
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s)
  }
  return "\"" + s + "\""
}

// The fast serializer builds the string directly, with the keys of each object shape sorted
// once (see shapeOf): on this project's inputs it runs at about the speed of JSON.stringify
// of the same value (bench/README.md). No path tracking and no cycle set (a depth bound
// stands in for it): anything unusual throws SLOW, and the careful serializer runs.
const fast = (v: unknown, depth: number): string => {
  switch (typeof v) {
    case "string":
      return quote(v)
    case "number":
      if (v - v !== 0) throw SLOW
      return "" + v
    case "boolean":
      return v ? "true" : "false"
    case "object": {
      if (v === null) return "null"
      if (depth > MAX_FAST_DEPTH) throw SLOW
      if (Array.isArray(v)) {
        let out = "["
        for (let i = 0; i < v.length; i++) {
          const x = v[i]
          if (x === undefined) throw SLOW
          out += (i === 0 ? "" : ",") + fast(x, depth + 1)
        }
        return out + "]"
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== objectProto && proto !== null) throw SLOW
      // Own keys only; an own "__proto__" key (from JSON.parse, or a null-prototype object)
      // is read as the data member it is.
      const shape = shapeOf(Object.keys(v))
      const order = shape.order
      let out = "{"
      let first = true
      for (let i = 0; i < order.length; i++) {
        const member = (v as Record<string, unknown>)[order[i]!]
        if (member === undefined) continue
        out += (first ? shape.quoted[i]! : "," + shape.quoted[i]!) + fast(member, depth + 1)
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

/**
 * The key an entry was looked up by, as the kernel knows it: the hashed text, its prefix
 * (`keyPrefix(name, version)`) and the (filtered) encoded input whose canonical JSON the
 * rest of the text is.
 */
export interface KnownKey {
  readonly text: string
  readonly prefix: string
  readonly input: unknown
}

/**
 * Whether JSON data `a` (parsed from a checkpoint) and `b` are the same JSON value: the same
 * primitives (by ===), arrays of the same members, objects with the same own keys (in any
 * order) and values. `true` means their canonical JSON is the same text; `false` may also
 * mean that `b` holds something only the serializer can judge (then it is asked).
 */
const sameJson = (a: unknown, b: unknown, depth: number): boolean => {
  if (a === b) return typeof a !== "object" || a === null
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || depth > 32) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i], depth + 1)) return false
    return true
  }
  if (Array.isArray(b)) return false
  const proto = Object.getPrototypeOf(b)
  if (proto !== Object.prototype && proto !== null) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const k of keys) {
    if (
      !Object.hasOwn(b, k) || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)
    ) {
      return false
    }
  }
  return true
}

// The key prefix of the entries checked last: a run of entries of one app builds it once.
let lastApp: string | undefined
let lastVersion: string | null = null
let lastPrefix = ""
const prefixOf = (app: string, version: string | null): string => {
  if (app !== lastApp || version !== lastVersion) {
    lastApp = app
    lastVersion = version
    lastPrefix = keyPrefix(app, version)
  }
  return lastPrefix
}

/**
 * The integrity rule of DESIGN §3, one function for the kernel (when it first serves a loaded
 * entry), `dfk verify`, `dfk compact` and `dfk repair`: an entry's `hash` must be the memo
 * key of its own `app`, `version` and `input`. Returns why it is not, or `undefined`.
 */
export const entryKeyProblem = (
  entry: {
    readonly hash: unknown
    readonly app: unknown
    readonly version: unknown
    readonly input: unknown
  },
  known?: KnownKey
): string | undefined => {
  if (typeof entry.app !== "string") return "the entry has no app name"
  if (entry.version !== null && typeof entry.version !== "string") {
    return "the entry's version is neither a string nor null"
  }
  if (entry.input === undefined) return "the entry has no input"
  // The same app, version and (plain JSON) input as the key the entry was found by: the same
  // text, so the same key, with nothing to serialize or hash.
  if (
    known !== undefined && prefixOf(entry.app, entry.version) === known.prefix && sameJson(entry.input, known.input, 0)
  ) {
    return undefined
  }
  const keyText = known?.text
  const json = tryCanonicalJson(entry.input)
  if (typeof json !== "string") return `the entry's input has no JSON form (${json.error})`
  const text = prefixOf(entry.app, entry.version) + json + "]"
  // `keyText`: the text whose sha256 the entry was found by (the kernel knows it): the same
  // text is the same key, with no hash to compute.
  if (keyText !== undefined && text === keyText) return undefined
  return sha256Hex(text) === entry.hash
    ? undefined
    : "the hash is not the memo key of the entry's app, version and input (the line was edited or damaged)"
}
