/**
 * The effect-dfk demo, as `npm run demo` runs it: a workflow of CPU-bound apps (Monte Carlo
 * estimates of pi, prime counts, word frequencies over a generated corpus, and three "join"
 * apps that call the others), memoized and checkpointed as each task completes.
 *
 * Run it twice: the second run serves every result from the checkpoint. Stop it with Ctrl-C
 * and run it again: it resumes and computes only what was not done.
 *
 * ```sh
 * npm run demo                          # 60 tasks, checkpoints under ./runinfo-demo
 * npm run demo -- --size small          # 12 small tasks
 * npm run demo -- --tasks 90 --scale 2 --run-dir /tmp/demo-runs
 * ```
 *
 * Options (or environment variables): `--tasks N` (`DEMO_TASKS`, at least 6), `--scale X`
 * (`DEMO_SCALE`, work per task), `--size small|normal|large` (`DEMO_SIZE`), `--run-dir DIR`
 * (`DEMO_RUN_DIR`), `--progress auto|line|steps|none` (`DEMO_PROGRESS`), `--verbose` (the
 * kernel's info logs).
 *
 * The demo's code is `cli/demo-workflow.ts` (its apps use only the public API, as
 * `examples/quickstart.ts` does), shared with the `dfk demo` command, which ships in the npm
 * package: this file only starts it.
 *
 * @module
 */
import { demoMain } from "../cli/demo-workflow.ts"

demoMain(process.argv.slice(2))
