// Wiring only: the output channel, the status bar item, the commands and the server session.

import * as vscode from 'vscode';

import { registerCommands } from './commands';
import { Session } from './session';
import { SECTION } from './settings';

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('DevstralElixir', { log: true });
  const statusItem = vscode.window.createStatusBarItem(
    `${SECTION}.status`,
    vscode.StatusBarAlignment.Right,
    100,
  );
  statusItem.name = 'DevstralElixir';
  statusItem.command = `${SECTION}.showStatus`;
  session = new Session(output, statusItem);
  const current = session;
  context.subscriptions.push(
    output,
    statusItem,
    current,
    registerCommands(current),
    vscode.workspace.onDidChangeConfiguration((event) => current.onConfigurationChanged(event)),
  );
  await vscode.commands.executeCommand('setContext', `${SECTION}.active`, true);
  await current.start();
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}
