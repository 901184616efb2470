/**
 * The SQL store's schema: the tables (`createTables`) and, with PostgreSQL, the function that
 * claims a batch in one round trip (`claimFunction`).
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { SqlStoreContext } from "./context.ts"

/** The name of PostgreSQL's claim function (without the prefix): see `claimFunction`. */
export const CLAIM_FUNCTION = "claim_v4"

/** The schema version these statements speak (2: entries have a `deleted` column, for tombstones). */
const SCHEMA_VERSION = 2

/** Creates the tables when they are missing (idempotent, safe when many processes start at once). */
export const createTables = (ctx: Pick<SqlStoreContext, "sql" | "prefix" | "isPg">): Effect.Effect<void, SqlError> => {
  const { isPg, prefix, sql } = ctx
  const id = (name: string) => sql(prefix + name)
  const newer = (version: number) =>
    Effect.dieMessage(
      `SqlStore: the tables ${prefix}* have schema version ${version}, newer than this library's (${SCHEMA_VERSION})`
    )
  const seq = isPg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
  const big = isPg ? "BIGINT" : "INTEGER"
  // PostgreSQL: whether the claim function of this version is in the current schema.
  const hasClaimFunction: Effect.Effect<boolean, SqlError> = Effect.map(
    sql`SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = ${
      prefix + CLAIM_FUNCTION
    } AND n.nspname = current_schema()`,
    (rows) => rows.length > 0
  )
  // Whether the tables are there at this version already (and, with PostgreSQL, the claim
  // function): then nothing is created, and no lock is taken on them. The DDL below locks
  // the tables even where it creates nothing (ALTER TABLE … ADD COLUMN IF NOT EXISTS takes
  // an ACCESS EXCLUSIVE lock, CREATE INDEX IF NOT EXISTS a SHARE lock): a process that
  // started while others claimed and wrote held its lock on the entries while waiting for
  // one on the claims, and PostgreSQL ended a running process's claim as a deadlock (1 in
  // ~10 four-process runs of B9), after stalling every reader of the entries meanwhile.
  const upToDate: Effect.Effect<boolean, SqlError> = Effect.gen(function*() {
    const meta = isPg
      ? yield* sql<{ readonly name: string | null }>`SELECT to_regclass(${`"${prefix}meta"`})::text AS name`
      : yield* sql<
        { readonly name: string | null }
      >`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${prefix + "meta"}`
    if (meta.length === 0 || meta[0]!.name === null) return false
    const rows = yield* sql<{ readonly value: string }>`SELECT value FROM ${id("meta")} WHERE key = 'schema'`
    const version = Number(rows[0]?.value)
    if (version > SCHEMA_VERSION) return yield* newer(version)
    if (version !== SCHEMA_VERSION) return false
    if (!isPg) return true
    return yield* hasClaimFunction
  })
  const ddl = Effect.gen(function*() {
    // PostgreSQL: one process at a time creates them (CREATE TABLE IF NOT EXISTS races on its catalog).
    if (isPg) yield* sql`SELECT pg_advisory_xact_lock(${7_336_147_090_201})`
    // Made by the process that held the lock before this one.
    if (yield* upToDate) return
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("meta")} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("runs")} (run_dir TEXT NOT NULL, n INTEGER NOT NULL, started ${
      sql.literal(big)
    } NOT NULL, PRIMARY KEY (run_dir, n))`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("checkpoints")} (dir TEXT PRIMARY KEY, run_dir TEXT, run INTEGER)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("entries")} (seq ${
      sql.literal(seq)
    }, dir TEXT NOT NULL, run_dir TEXT, run INTEGER, hash TEXT NOT NULL, app TEXT NOT NULL, version TEXT, input TEXT NOT NULL, result TEXT NOT NULL, time TEXT NOT NULL)`
    // Schema version 2: tombstones (the column added to the tables of version 1 in place).
    if (isPg) yield* sql`ALTER TABLE ${id("entries")} ADD COLUMN IF NOT EXISTS deleted INTEGER`
    else {
      const columns = yield* sql<{ readonly name: string }>`SELECT name FROM pragma_table_info(${prefix + "entries"})`
      if (!columns.some((c) => c.name === "deleted")) {
        yield* sql`ALTER TABLE ${id("entries")} ADD COLUMN deleted INTEGER`
      }
    }
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_dir")} ON ${id("entries")} (dir, seq)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_key")} ON ${id("entries")} (run_dir, hash)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_hash")} ON ${id("entries")} (hash, dir)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${
      id("claims")
    } (run_dir TEXT NOT NULL, hash TEXT NOT NULL, owner TEXT NOT NULL, owner_key TEXT, expires ${
      sql.literal(big)
    } NOT NULL, PRIMARY KEY (run_dir, hash))`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("claims_owner")} ON ${id("claims")} (owner)`
    if (isPg) {
      if (!(yield* hasClaimFunction)) yield* sql.unsafe(claimFunction(prefix))
    }
    yield* sql`INSERT INTO ${id("meta")} (key, value) VALUES ('schema', ${
      String(SCHEMA_VERSION)
    }) ON CONFLICT (key) DO NOTHING`
    yield* sql`UPDATE ${id("meta")} SET value = ${String(SCHEMA_VERSION)} WHERE key = 'schema' AND value = '1'`
    const rows = yield* sql<{ readonly value: string }>`SELECT value FROM ${id("meta")} WHERE key = 'schema'`
    const version = Number(rows[0]?.value)
    if (version > SCHEMA_VERSION) return yield* newer(version)
  })
  return Effect.flatMap(upToDate, (ok) =>
    ok ? Effect.void : sql.withTransaction(ddl).pipe(
      // SQLite: a process that starts while another creates them may find the database locked.
      Effect.retry({ times: 20, schedule: Schedule.spaced(Duration.millis(50)) })
    ))
}

/**
 * PostgreSQL: the function that claims a batch in one round trip (`claimMany`). It inserts
 * the claims first, then looks every key up, and gives back the claims won on keys an entry
 * answers. Its statements each see the database as it is when they run (a volatile function
 * under READ COMMITTED), so the lookup, which follows the insert, sees every entry committed
 * before the claim was won: a writer ends its claim in the transaction that writes the entry,
 * so an insert that met a writer's claim waited for its commit, and one that met none came
 * after it. (The claims of keys that have an entry are inserted and deleted in one
 * transaction: no other process sees them; one that claims such a key meanwhile waits for
 * this commit, then wins and finds the entry.) The claims are inserted in the order of their
 * keys: two batches that share keys then wait for each other at most one way (inserted in
 * the order asked, batches in opposite orders each waited for a row the other held, and
 * PostgreSQL ended one of them as a deadlock). It returns, per key: state 1 and the newest
 * entry of a key that has one; state 0 and the claim of another key lost (`r_gone`: out of
 * lease, or its holder's liveness lock free), read only when some key was lost; state 2 for
 * the other keys won, which it notifies (`p_note` followed by the hashes, when `p_note` is
 * not null). A key in none was given up meanwhile. A tombstone answers nothing (its key is
 * claimed as if it had no entry). Versioned by its name: a change makes `claim_v5`. (v3
 * looked the keys up before the insert as well: one lookup more, for keys that a run which
 * claims without looking up first seldom has.)
 */
const claimFunction = (prefix: string): string => {
  const q = (name: string) => `"${prefix}${name}"`
  return `CREATE FUNCTION ${
    q(CLAIM_FUNCTION)
  }(p_ns text, p_hashes text[], p_run text, p_key text, p_lease bigint, p_channel text, p_note text)
RETURNS TABLE (r_hash text, r_state int, r_owner text, r_gone int, r_run int, r_seq bigint, r_app text, r_version text, r_input text, r_result text, r_time text)
LANGUAGE plpgsql VOLATILE AS $dfk$
DECLARE
  v_now bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  v_won text[];
  v_found text[] := '{}';
  v_back text[];
  v_rest text[];
  v_rec record;
BEGIN
  WITH ins AS (
    INSERT INTO ${q("claims")} (run_dir, hash, owner, owner_key, expires)
    SELECT p_ns, h, p_run, p_key, v_now + p_lease FROM unnest(p_hashes) AS h ORDER BY h
    ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash
  ) SELECT coalesce(array_agg(ins.hash), '{}') INTO v_won FROM ins;
  -- The keys an entry answers (the newest entry of each; a tombstone answers nothing).
  FOR v_rec IN
    SELECT * FROM (
      SELECT DISTINCT ON (e.hash) e.hash, e.run, e.seq, e.app, e.version, e.input, e.result, e.time, e.deleted
      FROM ${q("entries")} e WHERE e.run_dir = p_ns AND e.hash = ANY(p_hashes)
      ORDER BY e.hash, e.run DESC NULLS LAST, e.seq DESC
    ) newest WHERE coalesce(newest.deleted, 0) = 0
  LOOP
    r_hash := v_rec.hash; r_state := 1; r_owner := NULL; r_gone := 0;
    r_run := v_rec.run; r_seq := v_rec.seq; r_app := v_rec.app; r_version := v_rec.version;
    r_input := v_rec.input; r_result := v_rec.result; r_time := v_rec.time;
    RETURN NEXT;
    v_found := v_found || v_rec.hash;
  END LOOP;
  IF cardinality(v_found) > 0 THEN
    v_back := ARRAY(SELECT w FROM unnest(v_won) AS w WHERE w = ANY(v_found));
    IF cardinality(v_back) > 0 THEN
      -- (The owner as an expression, as in the writes' deletes: the primary key finds the keys.)
      DELETE FROM ${q("claims")} c WHERE c.run_dir = p_ns AND (c.owner || '') = p_run AND c.hash = ANY(v_back);
    END IF;
    v_rest := ARRAY(SELECT w FROM unnest(v_won) AS w WHERE NOT (w = ANY(v_found)));
  ELSE
    v_rest := v_won;
  END IF;
  -- The claims of the keys lost, when some were.
  IF cardinality(v_won) < cardinality(p_hashes) THEN
    FOR v_rec IN
      SELECT c.hash, c.owner,
        CASE WHEN c.expires < v_now THEN 1 WHEN c.owner_key IS NULL OR c.owner_key = p_key THEN 0
          WHEN pg_try_advisory_xact_lock(c.owner_key::bigint) THEN 1 ELSE 0 END AS gone
      FROM ${q("claims")} c WHERE c.run_dir = p_ns AND c.hash = ANY(p_hashes) AND NOT (c.hash = ANY(v_won))
        AND NOT (c.hash = ANY(v_found))
    LOOP
      r_hash := v_rec.hash; r_state := 0; r_owner := v_rec.owner; r_gone := v_rec.gone;
      r_run := NULL; r_seq := NULL; r_app := NULL; r_version := NULL; r_input := NULL; r_result := NULL; r_time := NULL;
      RETURN NEXT;
    END LOOP;
  END IF;
  IF cardinality(v_rest) > 0 AND p_note IS NOT NULL THEN
    PERFORM pg_notify(p_channel, p_note || array_to_string(v_rest, ','));
  END IF;
  r_state := 2; r_owner := NULL; r_gone := 0;
  r_run := NULL; r_seq := NULL; r_app := NULL; r_version := NULL; r_input := NULL; r_result := NULL; r_time := NULL;
  FOREACH r_hash IN ARRAY v_rest LOOP
    RETURN NEXT;
  END LOOP;
  RETURN;
END
$dfk$`
}
