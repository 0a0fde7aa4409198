import { describe, expect, it } from 'vitest';
import { DATAPATH_INLINE_BUDGET, DATAPATH_TIERUP_BUDGET, inlineBudget, tierUpBudget } from './jit.js';

describe('inlineBudget / tierUpBudget', () => {
  it('are the datapath budgets unless TAPMESH_INLINE_BUDGET / TAPMESH_TIERUP_BUDGET say otherwise', () => {
    expect(inlineBudget({})).toBe(DATAPATH_INLINE_BUDGET);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '' })).toBe(DATAPATH_INLINE_BUDGET);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '0' })).toBe(0);
    expect(inlineBudget({ TAPMESH_INLINE_BUDGET: '2000' })).toBe(2000);
    expect(tierUpBudget({})).toBe(DATAPATH_TIERUP_BUDGET);
    expect(tierUpBudget({ TAPMESH_TIERUP_BUDGET: '0' })).toBe(0);
    expect(tierUpBudget({ TAPMESH_TIERUP_BUDGET: '4096' })).toBe(4096);
  });
  it('ignore a value that is not a byte count', () => {
    for (const v of ['-1', '1.5', 'lots', '1e9']) {
      expect(inlineBudget({ TAPMESH_INLINE_BUDGET: v })).toBe(DATAPATH_INLINE_BUDGET);
      expect(tierUpBudget({ TAPMESH_TIERUP_BUDGET: v })).toBe(DATAPATH_TIERUP_BUDGET);
    }
  });
});
