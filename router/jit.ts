// How V8 compiles the datapath: the inlining budget and how soon hot code is optimized.
//
// Inlining. The per-frame code is a fixed sequence of small stage functions over router/wire
// accessors, which is only fast once TurboFan has inlined them into the loops' callers. It
// inlines callees into an optimized function only up to a cumulative bytecode budget
// (--max-inlined-bytecode-size-cumulative, 920 bytes by default), and every accessor, stage and
// table lookup counts against it: at the default, the loops in datapath.ts call
// egress()/ingress()/deliver() per frame instead of inlining them (`node
// --trace-turbo-inlining`; bench/README.md, "Round 3"). The one-body loops of the old datapath
// fitted; the stage split does not.
//
// Tier-up. V8 optimizes a function after it has executed about 3 × --interrupt-budget (67584
// by default) bytes of its own bytecode. A stage of ~100 bytes, run once per frame, needs
// ~2,000 frames for that: tens of seconds at the packet rates users ping at, and the whole
// 1000-ping latency test ran in baseline code (bench/README.md, "Tier-up"). 8192 optimizes the
// stages after a few hundred frames.
//
// Both flags are process-wide (the agent's main thread gets them too: it compiles a little
// more, sooner); set before the datapath code runs.
import v8 from 'node:v8';

/**
 * Cumulative inlined bytecode per optimized function, in bytes. egress() with its stages needs
 * about 1700, ingress() about 2000 (1500 leaves hash/rd32s calls in egress, 2000 one rd32s in
 * ingress, 3000 none). 2000 is the default: in one interleaved run against the pre-stage tree
 * (bench/README.md, "Inlining budget: 0, 2000 or 3000") it gave the best TCP and ping together.
 */
export const DATAPATH_INLINE_BUDGET = 2000;

/** Bytecode bytes a function executes per tier-up tick (V8's --interrupt-budget; 3 ticks optimize). */
export const DATAPATH_TIERUP_BUDGET = 8192;

let applied = false;

/** A byte-count override from the environment (0 = leave V8's default), else `fallback`. */
function envBytes(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 1_000_000 ? n : fallback;
}

/**
 * The inlining budget to use: TAPMESH_INLINE_BUDGET (bytes; 0 = V8's default) when set, so that
 * one tree can be benched both ways (the bench's agents inherit the environment), else the default.
 */
export function inlineBudget(env: NodeJS.ProcessEnv = process.env): number {
  return envBytes(env.TAPMESH_INLINE_BUDGET, DATAPATH_INLINE_BUDGET);
}

/** The tier-up budget to use: TAPMESH_TIERUP_BUDGET (bytes; 0 = V8's default) when set, else the default. */
export function tierUpBudget(env: NodeJS.ProcessEnv = process.env): number {
  return envBytes(env.TAPMESH_TIERUP_BUDGET, DATAPATH_TIERUP_BUDGET);
}

/** Apply both (once per process, before the datapath's code gets hot). */
export function tuneJitForDatapath(inline = inlineBudget(), tierUp = tierUpBudget()): void {
  if (applied) return;
  applied = true;
  if (inline > 0) v8.setFlagsFromString(`--max-inlined-bytecode-size-cumulative=${inline}`);
  if (tierUp > 0) v8.setFlagsFromString(`--interrupt-budget=${tierUp}`);
}
