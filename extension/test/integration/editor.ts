// A minimal editor for the integration test: the capabilities vscode-languageclient 10.1 announces for
// the features the extension uses, and text edits applied as VS Code applies them.

import type { ClientCapabilities, Position, TextEdit, WorkspaceEdit } from 'vscode-languageserver-protocol';

export const CURSOR = '‸';

export const CAPABILITIES: ClientCapabilities = {
  workspace: {
    applyEdit: true,
    workspaceEdit: { documentChanges: true },
    didChangeConfiguration: { dynamicRegistration: true },
    executeCommand: { dynamicRegistration: true },
    configuration: true,
    workspaceFolders: true,
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    completion: { dynamicRegistration: true, contextSupport: true, completionItem: { snippetSupport: true } },
    inlineCompletion: { dynamicRegistration: true },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ['edit', 'command'] },
      codeActionLiteralSupport: {
        codeActionKind: {
          valueSet: [
            '',
            'quickfix',
            'refactor',
            'refactor.extract',
            'refactor.inline',
            'refactor.move',
            'refactor.rewrite',
            'source',
            'source.organizeImports',
            'notebook',
          ],
        },
      },
      honorsChangeAnnotations: true,
    },
    publishDiagnostics: {
      relatedInformation: true,
      versionSupport: true,
      codeDescriptionSupport: true,
      dataSupport: true,
    },
  },
  window: {
    workDoneProgress: true,
    showMessage: { messageActionItem: { additionalPropertiesSupport: true } },
  },
};

/** The text without cursor markers, and each marker's position (JS strings index in UTF-16, as LSP). */
export function stripCursors(marked: string): { text: string; cursors: Position[] } {
  const cursors: Position[] = [];
  const lines = marked.split('\n').map((line, lineNumber) => {
    let column: number;
    while ((column = line.indexOf(CURSOR)) >= 0) {
      cursors.push({ line: lineNumber, character: column });
      line = line.slice(0, column) + line.slice(column + CURSOR.length);
    }
    return line;
  });
  return { text: lines.join('\n'), cursors };
}

function offset(text: string, position: Position): number {
  const lines = text.split('\n');
  const before = lines.slice(0, position.line).reduce((sum, line) => sum + line.length + 1, 0);
  return before + Math.min(position.character, (lines[position.line] ?? '').length);
}

/** The text edits a workspace edit makes to one document. */
export function editsFor(edit: WorkspaceEdit | undefined, uri: string): TextEdit[] {
  const edits: TextEdit[] = [];
  for (const change of edit?.documentChanges ?? []) {
    if ('textDocument' in change && change.textDocument.uri === uri) {
      edits.push(...(change.edits as TextEdit[]));
    }
  }
  edits.push(...(edit?.changes?.[uri] ?? []));
  return edits;
}

/** Edits all relative to the original text, applied back to front. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const spans = edits
    .map((e) => ({ start: offset(text, e.range.start), end: offset(text, e.range.end), newText: e.newText }))
    .sort((a, b) => b.start - a.start);
  return spans.reduce((result, s) => result.slice(0, s.start) + s.newText + result.slice(s.end), text);
}

/** `-`/`+` lines for the test's recorded output (docs/vscode.md shows it). */
export function changedLines(before: string, after: string): string {
  const old = before.split('\n');
  const now = after.split('\n');
  return [
    ...old.filter((l) => !now.includes(l)).map((l) => `- ${l}`),
    ...now.filter((l) => !old.includes(l)).map((l) => `+ ${l}`),
  ].join('\n');
}
