// One language server process per window: starting, restarting, settings, and the status bar.

import * as fs from 'node:fs';
import * as os from 'node:os';

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  State,
} from 'vscode-languageclient/node';

import manifest from '../package.json';
import { type Status, STATUS_REQUEST, type StatusParams } from './protocol';
import { selectedPython } from './pythonEnvironment';
import { type Host, resolveServerCommand, type ServerCommand } from './serverCommand';
import {
  contributedKeys,
  expandPath,
  needsRestart,
  SECTION,
  type ServerSettings,
  serverSettings,
} from './settings';
import { type StatusBarView, statusBarView } from './statusBar';

const SETTING_KEYS = contributedKeys(manifest);
const LOAD_POLL_MS = 1000;

const nodeHost: Host = {
  platform: process.platform,
  pathEnv: process.env.PATH,
  isFile: (file) => {
    try {
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  },
};

export class Session implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private lastStatus: Status | undefined;
  private lastLatencyMs: number | undefined;
  private refreshing = false;
  private refreshAgain = false;
  private startError: string | undefined;
  // What the server was last told, so that changing an extension-only setting sends nothing.
  private sentSettings: string | undefined;

  constructor(
    readonly output: vscode.LogOutputChannel,
    private readonly statusItem: vscode.StatusBarItem,
  ) {}

  private folder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  private configuration(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION, this.folder());
  }

  private expand(value: string): string {
    return expandPath(value, { home: os.homedir(), workspaceFolder: this.folder()?.uri.fsPath });
  }

  serverSettings(): ServerSettings {
    const configuration = this.configuration();
    const settings = serverSettings(SETTING_KEYS, (key) => configuration.get(key), {
      home: os.homedir(),
      workspaceFolder: this.folder()?.uri.fsPath,
    });
    this.sentSettings = JSON.stringify(settings);
    return settings;
  }

  private async serverCommand(): Promise<ServerCommand | undefined> {
    const configuration = this.configuration();
    const source = {
      command: configuration.get<string[]>('server.command', []).map((part) => this.expand(part)),
      pythonPath: this.expand(configuration.get<string>('server.pythonPath', '')),
    };
    let resolution = resolveServerCommand(source, nodeHost);
    if (!resolution.ok && source.command.length === 0 && !source.pythonPath) {
      const selected = await selectedPython(this.folder()?.uri);
      if (selected !== undefined) {
        resolution = resolveServerCommand({ ...source, selectedPython: selected }, nodeHost);
      }
    }
    if (resolution.ok) {
      return resolution.server;
    }
    this.fail(resolution.message);
    return undefined;
  }

  private fail(message: string): void {
    this.startError = message;
    this.output.error(message);
    this.showView();
    void vscode.window
      .showErrorMessage(`DevstralElixir: ${message}`, 'Open Settings', 'Show Output')
      .then((answer) => {
        if (answer === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.server`);
        } else if (answer === 'Show Output') {
          this.output.show();
        }
      });
  }

  async start(): Promise<void> {
    this.startError = undefined;
    this.lastStatus = undefined;
    this.showView();
    const server = await this.serverCommand();
    if (server === undefined) {
      return;
    }
    const cwd = this.folder()?.uri.fsPath;
    this.output.info(`starting ${[server.command, ...server.args].join(' ')} (from ${server.origin})`);
    const options: LanguageClientOptions = {
      documentSelector: [
        { scheme: 'file', language: 'elixir' },
        { scheme: 'untitled', language: 'elixir' },
      ],
      initializationOptions: () => this.serverSettings(),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      diagnosticCollectionName: 'devstral-elixir',
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const started = performance.now();
          const result = await next(document, position, context, token);
          const items = Array.isArray(result) ? result : (result?.items ?? []);
          if (items.length > 0 && !token.isCancellationRequested) {
            this.lastLatencyMs = performance.now() - started;
            this.refreshStatus();
          }
          return result;
        },
      },
    };
    const client = new LanguageClient(
      SECTION,
      'DevstralElixir',
      {
        command: server.command,
        args: server.args,
        options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1' } },
      },
      options,
    );
    // Also after vscode-languageclient restarted a crashed server by itself.
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        void this.watchUntilLoaded(client);
      } else if (event.newState === State.Stopped) {
        this.lastStatus = undefined;
        this.showView();
      }
    });
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.fail(
        `the language server did not start: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && client.state !== State.Stopped) {
      await client
        .stop()
        .catch((error: unknown) => this.output.warn(`stopping the server: ${String(error)}`));
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
  }

  running(): LanguageClient | undefined {
    return this.client?.state === State.Running ? this.client : undefined;
  }

  /** Tell the user why there is no server, and return undefined; or the running client. */
  requireClient(): LanguageClient | undefined {
    const client = this.running();
    if (client === undefined) {
      void vscode.window.showWarningMessage(
        `DevstralElixir: the server is not running${this.startError ? `: ${this.startError}` : ''}.`,
      );
    }
    return client;
  }

  async fetchStatus(params: StatusParams = {}): Promise<Status | undefined> {
    const client = this.running();
    if (client === undefined) {
      return undefined;
    }
    const status = await client.sendRequest<Status>(STATUS_REQUEST, params);
    this.lastStatus = status;
    this.showView();
    return status;
  }

  /** A status request after a completion: at most one at a time, and one more if asked meanwhile. */
  refreshStatus(): void {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    void this.fetchStatus()
      .catch((error: unknown) => this.output.debug(`status: ${String(error)}`))
      .finally(() => {
        this.refreshing = false;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refreshStatus();
        }
      });
  }

  // The model loads after `initialized`, and a registry version loads beside the served one: look
  // again until it is there.
  private async watchUntilLoaded(client: LanguageClient): Promise<void> {
    while (this.client === client && client.state === State.Running) {
      const status = await this.fetchStatus().catch(() => undefined);
      if (status !== undefined && (status.model !== null || status.modelError) && !status.registry.loading) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, LOAD_POLL_MS));
    }
  }

  async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    if (needsRestart((key) => event.affectsConfiguration(key))) {
      await this.restart();
      return;
    }
    const client = this.running();
    const previous = this.sentSettings;
    const settings = this.serverSettings();
    if (client !== undefined && JSON.stringify(settings) !== previous) {
      await client.sendNotification(DidChangeConfigurationNotification.type, { settings });
      void this.watchUntilLoaded(client);
    }
  }

  private showView(): void {
    const view: StatusBarView = this.startError
      ? { text: '$(error) DevstralElixir', tooltip: `DevstralElixir: ${this.startError}`, severity: 'error' }
      : statusBarView(this.lastStatus, this.lastLatencyMs);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.severity === 'ok' ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
    this.statusItem.show();
  }
}
