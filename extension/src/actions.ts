// The code-action requests behind "Make idiomatic (selection)" and "Fix all idioms in file", and the
// choice among the answers. Pure (protocol types only), so the integration test sends the same requests.

import type {
  CodeAction,
  CodeActionParams,
  Command,
  Diagnostic,
  Range,
} from 'vscode-languageserver-protocol';

import { FIX_ALL_KIND, MODEL_ACTION_TITLE } from './protocol';

// Rule rewrites are quick fixes (safe, mostly safe) or refactor.rewrite (unsafe ones and the model's).
export const MAKE_IDIOMATIC_KINDS = ['quickfix', 'refactor.rewrite'];

export function makeIdiomaticParams(
  uri: string,
  range: Range,
  diagnostics: Diagnostic[] = [],
): CodeActionParams {
  return { textDocument: { uri }, range, context: { diagnostics, only: MAKE_IDIOMATIC_KINDS } };
}

/** A bare cursor at the start: the server's fix-all then covers the whole file. */
export function fixAllParams(uri: string): CodeActionParams {
  const start = { line: 0, character: 0 };
  return {
    textDocument: { uri },
    range: { start, end: start },
    context: { diagnostics: [], only: [FIX_ALL_KIND] },
  };
}

export function isCodeAction(item: Command | CodeAction): item is CodeAction {
  return typeof (item as Command).command !== 'string';
}

/** The actions worth offering, rule rewrites first and the (slower) model rewrite last. */
export function offeredActions(result: (Command | CodeAction)[] | null | undefined): CodeAction[] {
  const actions = (result ?? []).filter(isCodeAction).filter((action) => !action.disabled);
  const isModel = (action: CodeAction) => action.title === MODEL_ACTION_TITLE;
  return [...actions.filter((a) => !isModel(a)), ...actions.filter(isModel)];
}

export function isFixAll(action: CodeAction): boolean {
  return action.kind === FIX_ALL_KIND || (action.kind ?? '').startsWith(`${FIX_ALL_KIND}.`);
}
