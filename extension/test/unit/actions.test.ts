import { describe, expect, it } from 'vitest';
import type { CodeAction, Command } from 'vscode-languageserver-protocol';

import { fixAllParams, isFixAll, makeIdiomaticParams, offeredActions } from '../../src/actions';

describe('code action requests', () => {
  it('asks for quick fixes and rewrites on the selection', () => {
    const range = { start: { line: 3, character: 4 }, end: { line: 3, character: 40 } };
    expect(makeIdiomaticParams('file:///a.ex', range)).toEqual({
      textDocument: { uri: 'file:///a.ex' },
      range,
      context: { diagnostics: [], only: ['quickfix', 'refactor.rewrite'] },
    });
  });

  it('asks for the server fix-all kind at a bare cursor (the whole file)', () => {
    const params = fixAllParams('file:///a.ex');
    expect(params.context.only).toEqual(['source.fixAll.devstralElixir']);
    expect(params.range.start).toEqual(params.range.end);
  });

  it('offers enabled code actions only, the model rewrite last', () => {
    const command: Command = { title: 'Run', command: 'x' };
    const model: CodeAction = { title: 'Make idiomatic (model)', kind: 'refactor.rewrite' };
    const rule: CodeAction = {
      title: 'Make idiomatic: Enum.filter |> Enum.count → Enum.count/2',
      kind: 'quickfix',
    };
    const stale: CodeAction = { title: 'old', disabled: { reason: 'the document changed' } };
    expect(offeredActions([model, command, stale, rule])).toEqual([rule, model]);
    expect(offeredActions(null)).toEqual([]);
  });

  it('recognises fix-all actions by kind', () => {
    expect(isFixAll({ title: 'f', kind: 'source.fixAll.devstralElixir' })).toBe(true);
    expect(isFixAll({ title: 'f', kind: 'quickfix' })).toBe(false);
  });
});
