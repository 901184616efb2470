/**
 * Loaded checkpoint entries, as the kernel keeps them until a call asks for one.
 */

/**
 * A loaded checkpoint entry, as the kernel keeps it: its result and time, and what its hash
 * must be the key of (app, version, input), checked when it is first served.
 */
export class LoadedResult {
  constructor(
    readonly hash: string,
    readonly result: unknown,
    readonly time: string,
    readonly app: string,
    readonly version: string | null,
    readonly input: unknown
  ) {}
}

/**
 * One string per distinct app name and version among loaded entries, rather than one per
 * entry (JSON.parse makes a new string for each value).
 */
export class Interned {
  private readonly strings = new Map<string, string>()
  of<S extends string | null>(s: S): S {
    if (s === null) return s
    const known = this.strings.get(s)
    if (known !== undefined) return known as S
    this.strings.set(s, s)
    return s
  }
}
