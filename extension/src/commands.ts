// The extension's commands; each sends one or two requests to the server and shows the answer.

import * as vscode from 'vscode';
import {
  type CodeAction,
  CodeActionRequest,
  CodeActionResolveRequest,
  type LanguageClient,
} from 'vscode-languageclient/node';

import { fixAllParams, isFixAll, makeIdiomaticParams, offeredActions } from './actions';
import { PIN_VERSION_REQUEST, type PinVersionParams, type RegistryStatus } from './protocol';
import { versionChoices } from './registry';
import type { Session } from './session';
import { SECTION } from './settings';
import { shortVersion } from './statusBar';

function elixirEditor(): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor?.document.languageId !== 'elixir') {
    void vscode.window.showInformationMessage('DevstralElixir: open an Elixir file first.');
    return undefined;
  }
  return editor;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolve (the server attaches edits lazily) and apply one code action. */
async function apply(client: LanguageClient, action: CodeAction): Promise<void> {
  // The model rewrite shows the server's own cancellable progress; this is the quiet window indicator.
  const resolved = action.edit
    ? action
    : await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: action.title },
        () => client.sendRequest(CodeActionResolveRequest.type, action),
      );
  if (resolved.disabled) {
    void vscode.window.showInformationMessage(`DevstralElixir: ${action.title}: ${resolved.disabled.reason}`);
    return;
  }
  if (!resolved.edit) {
    void vscode.window.showInformationMessage(`DevstralElixir: ${action.title}: nothing to change.`);
    return;
  }
  const edit = await client.protocol2CodeConverter.asWorkspaceEdit(resolved.edit);
  if (!(await vscode.workspace.applyEdit(edit))) {
    void vscode.window.showWarningMessage(`DevstralElixir: ${action.title}: the edit could not be applied.`);
  }
}

async function makeIdiomatic(session: Session): Promise<void> {
  const editor = elixirEditor();
  const client = editor && session.requireClient();
  if (editor === undefined || client === undefined) {
    return;
  }
  const { document, selection } = editor;
  const c2p = client.code2ProtocolConverter;
  const overlapping = (client.diagnostics?.get(document.uri) ?? []).filter((d) =>
    d.range.intersection(selection),
  );
  const params = makeIdiomaticParams(
    document.uri.toString(),
    c2p.asRange(selection),
    await c2p.asDiagnostics([...overlapping]),
  );
  const actions = offeredActions(await client.sendRequest(CodeActionRequest.type, params));
  if (actions.length === 0) {
    void vscode.window.showInformationMessage(
      'DevstralElixir: no idiomatic rewrite applies to the selection.',
    );
    return;
  }
  const chosen =
    actions.length === 1
      ? actions[0]
      : (
          await vscode.window.showQuickPick(
            actions.map((action) => ({ label: action.title, description: action.kind, action })),
            { placeHolder: 'Make idiomatic: which rewrite?' },
          )
        )?.action;
  if (chosen !== undefined) {
    await apply(client, chosen);
  }
}

async function fixAll(session: Session): Promise<void> {
  const editor = elixirEditor();
  const client = editor && session.requireClient();
  if (editor === undefined || client === undefined) {
    return;
  }
  const result = await client.sendRequest(
    CodeActionRequest.type,
    fixAllParams(editor.document.uri.toString()),
  );
  const action = offeredActions(result).find(isFixAll);
  if (action === undefined) {
    void vscode.window.showInformationMessage('DevstralElixir: no idiom rules are enabled to fix this file.');
    return;
  }
  await apply(client, action);
}

async function noRegistry(registry: RegistryStatus): Promise<void> {
  const answer = await vscode.window.showInformationMessage(
    `DevstralElixir: no model registry is configured${registry.lastError ? ` (${registry.lastError})` : ''}; ` +
      'set devstralElixir.model.registry to the folder `finetune registry` writes.',
    'Open Settings',
  );
  if (answer === 'Open Settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.model.registry`);
  }
}

async function switchModelVersion(session: Session): Promise<void> {
  const client = session.requireClient();
  const status = client && (await session.fetchStatus({ withVersions: true }));
  if (client === undefined || status === undefined) {
    return;
  }
  const { registry } = status;
  if (registry.root === null) {
    await noRegistry(registry);
    return;
  }
  if (registry.versionsError) {
    void vscode.window.showErrorMessage(
      `DevstralElixir: cannot list the versions: ${registry.versionsError}`,
    );
    return;
  }
  const choices = versionChoices(registry);
  const picked = await vscode.window.showQuickPick(choices, {
    placeHolder: `Serve which version of ${registry.root}?`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked === undefined) {
    return;
  }
  const title = picked.version
    ? `loading version ${shortVersion(picked.version)}`
    : `following channel '${registry.channel}'`;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `DevstralElixir: ${title}` },
      () =>
        client.sendRequest<RegistryStatus>(PIN_VERSION_REQUEST, {
          version: picked.version,
        } satisfies PinVersionParams),
    );
  } catch (error) {
    void vscode.window.showErrorMessage(`DevstralElixir: ${describe(error)}`);
  }
  session.refreshStatus();
}

async function showStatus(session: Session): Promise<void> {
  const client = session.requireClient();
  if (client === undefined) {
    session.output.show(true);
    return;
  }
  const editor = vscode.window.activeTextEditor;
  const uri = editor?.document.languageId === 'elixir' ? editor.document.uri.toString() : undefined;
  const status = await session.fetchStatus(uri ? { uri } : {});
  session.output.info(`status:\n${JSON.stringify(status, null, 2)}`);
  session.output.show(true);
}

export function registerCommands(session: Session): vscode.Disposable {
  const guarded = (name: string, run: (session: Session) => Promise<void>) =>
    vscode.commands.registerCommand(`${SECTION}.${name}`, async () => {
      try {
        await run(session);
      } catch (error) {
        session.output.error(`${name}: ${describe(error)}`);
        void vscode.window.showErrorMessage(`DevstralElixir: ${describe(error)}`);
      }
    });
  return vscode.Disposable.from(
    guarded('makeIdiomatic', makeIdiomatic),
    guarded('fixAll', fixAll),
    guarded('switchModelVersion', switchModelVersion),
    guarded('showStatus', showStatus),
    guarded('restartServer', (s) => s.restart()),
  );
}
