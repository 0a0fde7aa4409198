// V8's inlining budget for the datapath. The per-frame code is a fixed sequence of small stage
// functions (egress.ts, ingress.ts) over one-line header accessors (router/wire) and NumTable
// lookups. TurboFan inlines callees into an optimized function only up to a cumulative bytecode
// budget (--max-inlined-bytecode-size-cumulative, 920 bytes by default), and every accessor,
// however tiny, counts against it. With the default, egress() runs out after the source and
// destination checks, so the table lookups, the queueing and the VXLAN header write stay calls
// (5 to 7 per frame), ingress() keeps four NumTable.find calls and checkSrcIp as calls, and the
// loops in datapath.ts call egress()/ingress()/deliver() per frame instead of inlining them
// (`node --trace-turbo-inlining`; bench/README.md, "Round 3"). The one-body loops of the old
// datapath did not hit the limit, because a function's own bytecode is free. Raising the budget
// gives the staged code the same optimized shape as the one-body loop without merging the stages.
//
// V8 flags are per process: set from the datapath worker, the flag also applies to the agent's
// main thread (its code is cold; it costs only a little more compile time there).
import v8 from 'node:v8';

/**
 * Cumulative inlined bytecode per optimized function, in bytes. egress() with its stages needs
 * about 1700, ingress() about 2000 (1500 leaves hash/rd32s calls in egress, 2000 one rd32s in
 * ingress, 3000 none). 2000 is the default: in one interleaved run against the pre-stage tree
 * (bench/README.md, "Inlining budget: 0, 2000 or 3000") it gave the best TCP and ping together;
 * 3000 cost back-to-back ping latency (larger optimized bodies for one-frame batches).
 */
export const DATAPATH_INLINE_BUDGET = 2000;

let applied = false;

/**
 * The budget to use: TAPMESH_INLINE_BUDGET (bytes; 0 = leave V8's default) when set, so that one
 * tree can be benched both ways (the bench's agents inherit the environment), else the default.
 */
export function inlineBudget(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.TAPMESH_INLINE_BUDGET;
  if (v === undefined || v === '') return DATAPATH_INLINE_BUDGET;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 100_000 ? n : DATAPATH_INLINE_BUDGET;
}

/** Raise the inlining budget (once per process, before the datapath's code gets hot). */
export function tuneInliningForDatapath(budget = inlineBudget()): void {
  if (applied || budget === 0) return;
  applied = true;
  v8.setFlagsFromString(`--max-inlined-bytecode-size-cumulative=${budget}`);
}
