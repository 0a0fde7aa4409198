import { describe, expect, it } from 'vitest';
import { DATAPATH_INLINE_BUDGET, inlineBudget } from './inlining.js';

describe('inlineBudget', () => {
  it('is the datapath budget unless TAPMESH_INLINE_BUDGET says otherwise', () => {
    expect(inlineBudget({})).toBe(DATAPATH_INLINE_BUDGET);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '' })).toBe(DATAPATH_INLINE_BUDGET);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '0' })).toBe(0);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '2000' })).toBe(2000);
  });
  it('ignores a value that is not a byte count', () => {
    for (const v of ['-1', '1.5', 'lots', '1e9']) expect(inlineBudget({ TAPMESH_INLINE_BUDGET: v })).toBe(DATAPATH_INLINE_BUDGET);
  });
});
