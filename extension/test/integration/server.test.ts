// The wire contract between the extension and the real Python server: the server process over stdio,
// driven through the protocol layer vscode-languageclient is built on, with the initializationOptions,
// code-action requests and custom requests the extension sends. The embedded model really runs.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CodeAction,
  CodeActionRequest,
  CodeActionResolveRequest,
  createProtocolConnection,
  type Diagnostic,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  type InitializeResult,
  InitializeRequest,
  InitializedNotification,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  LogMessageNotification,
  type ProtocolConnection,
  PublishDiagnosticsNotification,
  type Range,
  RegistrationRequest,
  ResponseError,
  ShowMessageNotification,
  type ShowMessageParams,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';

import manifest from '../../package.json';
import { fixAllParams, isFixAll, makeIdiomaticParams, offeredActions } from '../../src/actions';
import {
  FIX_ALL_KIND,
  MODEL_ACTION_TITLE,
  PIN_VERSION_REQUEST,
  type Status,
  STATUS_REQUEST,
} from '../../src/protocol';
import {
  contributedDefaults,
  contributedKeys,
  type ServerSettings,
  serverSettings,
} from '../../src/settings';
import { missingServer, python, REPO_ROOT, SERVER } from '../python';
import { applyEdits, CAPABILITIES, changedLines, editsFor, stripCursors } from './editor';

interface ModelCall {
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generationMs: number;
}

const skipped = missingServer();
if (skipped !== undefined) {
  console.warn(`skipped the integration test: ${skipped}`);
}

const STATS = `defmodule Shop.Stats do
  # Users who logged in this month.
  def active_count(users) do
    users |> Enum.filter(& &1.active) |> Enum.count()
  end

  def slug(name) do
    String.trim(name |> String.downcase())
  end
end
`;

// The extension's defaults, but without the completion time budget: the budget makes the text depend on
// how busy the machine is, while greedy decoding without it gives the same text on every run.
const TEST_OVERRIDES: Record<string, unknown> = { 'completion.timeBudgetMs': 0 };

/** What the extension sends when only `overrides` (and TEST_OVERRIDES) differ from the defaults. */
function defaultSettings(overrides: Record<string, unknown> = {}): ServerSettings {
  const defaults = contributedDefaults(manifest);
  overrides = { ...TEST_OVERRIDES, ...overrides };
  return serverSettings(
    contributedKeys(manifest),
    (key) => (key in overrides ? overrides[key] : defaults.get(key)),
    {
      home: process.env.HOME ?? '/',
      workspaceFolder: REPO_ROOT,
    },
  );
}

// A version as `finetune registry add` writes it (lsp/registry.py's manifest; no channel promotes it).
const WRITE_VERSION = `
import json, pathlib, sys
from lsp.registry import MANIFEST_FILE, VersionManifest, version_dir
root = pathlib.Path(json.load(sys.stdin))
manifest = VersionManifest(id="3d27d4bf0123abcd", kind="adapter", entry="adapter.gguf", files={},
    prompt_format="devstral-elixir/1", base_name="SmolLM2", base_sha256="0" * 64,
    created_at="2026-03-01T12:00:00Z", run_name="smollm2-cpu")
version_dir(root, manifest.id).mkdir(parents=True)
(version_dir(root, manifest.id) / MANIFEST_FILE).write_text(json.dumps(manifest.as_json()))
print("null")
`;

describe.skipIf(skipped !== undefined)('the server as the extension drives it', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let initialized: InitializeResult;
  let stderr = '';
  const messages: ShowMessageParams[] = [];
  const diagnostics = new Map<string, Diagnostic[]>();
  let exitCode: Promise<number | null>;

  async function status(): Promise<Status> {
    return connection.sendRequest<Status>(STATUS_REQUEST, {});
  }

  async function until<T>(
    what: string,
    probe: () => Promise<T | undefined>,
    timeoutMs = 120_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server stderr:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  let version = 0;
  function open(name: string, text: string): string {
    const uri = pathToFileURL(path.join(REPO_ROOT, 'examples', 'lib', name)).href;
    version += 1;
    void connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'elixir', version, text },
    });
    return uri;
  }

  async function actionsAt(uri: string, range: Range): Promise<CodeAction[]> {
    const overlapping = (diagnostics.get(uri) ?? []).filter(
      (d) => d.range.start.line <= range.end.line && range.start.line <= d.range.end.line,
    );
    return offeredActions(
      await connection.sendRequest(CodeActionRequest.type, makeIdiomaticParams(uri, range, overlapping)),
    );
  }

  beforeAll(async () => {
    server = spawn(SERVER, [], { cwd: REPO_ROOT, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    exitCode = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
    server.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    connection = createProtocolConnection(
      new StreamMessageReader(server.stdout!),
      new StreamMessageWriter(server.stdin!),
    );
    connection.onNotification(ShowMessageNotification.type, (params) => {
      messages.push(params);
    });
    connection.onNotification(LogMessageNotification.type, () => undefined);
    connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
      diagnostics.set(params.uri, params.diagnostics);
    });
    // What VS Code answers: progress bars and dynamic registrations are accepted.
    connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    connection.onRequest(RegistrationRequest.type, () => undefined);
    connection.listen();
    const root = pathToFileURL(REPO_ROOT).href;
    initialized = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
      rootUri: root,
      workspaceFolders: [{ uri: root, name: 'main' }],
      capabilities: CAPABILITIES,
      initializationOptions: defaultSettings(),
    });
    await connection.sendNotification(InitializedNotification.type, {});
    // The model loads after `initialized`, as in the editor.
    await until('the model', async () => {
      const s = await status();
      return s.model !== null || s.modelError ? s : undefined;
    });
  });

  afterAll(async () => {
    if (connection === undefined) return;
    await connection.sendRequest(ShutdownRequest.type);
    await connection.sendNotification(ExitNotification.type);
    const code = await Promise.race([
      exitCode,
      new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000)),
    ]);
    connection.dispose();
    if (code === 'still running') server.kill();
    expect(code).toBe(0);
  });

  it('advertises the features the extension uses', () => {
    const caps = initialized.capabilities;
    expect(caps.inlineCompletionProvider).toBeTruthy();
    expect(caps.codeActionProvider).toMatchObject({ resolveProvider: true });
    const kinds = (caps.codeActionProvider as { codeActionKinds: string[] }).codeActionKinds;
    expect(kinds).toEqual(expect.arrayContaining(['quickfix', 'refactor.rewrite', FIX_ALL_KIND]));
    expect(caps.executeCommandProvider?.commands).toContain('devstralElixir.pinVersion');
    // No extension command may collide with a server command (vscode-languageclient registers those).
    const ours = manifest.contributes.commands.map((c) => c.command);
    expect(ours.filter((c) => caps.executeCommandProvider?.commands.includes(c))).toEqual([]);
  });

  it('takes the contributed defaults without a complaint and loads the embedded model', async () => {
    const s = await status();
    expect(s.modelError).toBeNull();
    expect(s.backend).toBe('llama_cpp');
    expect(s.model).toMatch(/smollm2/i);
    expect(s.registry).toMatchObject({ root: null, channel: 'stable', pinned: null });
    expect(messages.map((m) => m.message)).toEqual([]);
  });

  it('answers an inline completion inside a function body', async () => {
    const { text, cursors } = stripCursors(
      readFileSync(path.join(REPO_ROOT, 'examples', 'lib', 'shopping_cart.ex'), 'utf8'),
    );
    const uri = open('shopping_cart.ex', text);
    // The second marker: `Enum.map(fn {item, quantity} -> ‸ end)`, mid-line, so the answer is one line.
    const position = cursors[1];
    const result = await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position,
      context: { triggerKind: InlineCompletionTriggerKind.Invoked },
    });
    const items = Array.isArray(result) ? result : (result?.items ?? []);
    expect(items.length, `no completion; server counters: ${JSON.stringify((await status()).requests)}`).toBe(
      1,
    );
    const insert = items[0].insertText;
    const inserted = typeof insert === 'string' ? insert : insert.value;
    const call = (await connection.sendRequest<Status>(STATUS_REQUEST, { withPrompt: true }))
      .lastModelCall as ModelCall;
    console.info(
      `inline completion at ${position.line + 1}:${position.character + 1}: ${JSON.stringify(inserted)} ` +
        `(prompt ${call.promptTokens} tokens in ${call.promptMs} ms, ${call.generatedTokens} tokens in ${call.generationMs} ms)`,
    );
    expect(inserted.trim()).not.toBe('');
    expect(inserted).not.toContain('\n');
    expect(inserted, 'it uses a name in scope').toMatch(/\b(item|quantity)\b/);
    expect(items[0].range).toEqual({ start: position, end: position });
    const after = await status();
    expect(after.requests.served).toBeGreaterThanOrEqual(1);
    expect(after.requests.latencyMs.p50).not.toBeNull();
  }, 150_000);

  it('lists the rewrites for a selection, the model rewrite last, and resolves one to its edit', async () => {
    const uri = open('stats.ex', STATS);
    await until(
      'diagnostics',
      async () => ((diagnostics.get(uri)?.length ?? 0) >= 2 ? true : undefined),
      30_000,
    );
    const actions = await actionsAt(uri, {
      start: { line: 3, character: 4 },
      end: { line: 3, character: 52 },
    });
    const titles = actions.map((a) => a.title);
    const rule = actions.find((a) => a.title.startsWith('Make idiomatic: Enum.filter |> Enum.count'));
    expect(rule, titles.join(', ')).toBeDefined();
    expect(rule!.kind).toBe('quickfix');
    expect(rule!.edit).toBeUndefined();
    expect(titles[titles.length - 1]).toBe(MODEL_ACTION_TITLE);
    const resolved = await connection.sendRequest(CodeActionResolveRequest.type, rule!);
    expect(resolved.disabled).toBeUndefined();
    const after = applyEdits(STATS, editsFor(resolved.edit, uri));
    console.info(
      `Make idiomatic (selection) on line 4 offers:\n  ${titles.join('\n  ')}\n${rule!.title}:\n${changedLines(STATS, after)}`,
    );
    expect(after).toContain('    users |> Enum.count(& &1.active)\n');
    expect(
      after.replace('users |> Enum.count(& &1.active)', 'users |> Enum.filter(& &1.active) |> Enum.count()'),
    ).toBe(STATS);
  });

  it('turns a nested call into a pipe', async () => {
    const uri = open('slug.ex', STATS);
    const actions = await actionsAt(uri, {
      start: { line: 7, character: 4 },
      end: { line: 7, character: 42 },
    });
    const pipe = actions.find((a) => a.kind === 'quickfix' && a.title.includes('d(a |> b())'));
    expect(pipe, actions.map((a) => a.title).join(', ')).toBeDefined();
    const resolved = await connection.sendRequest(CodeActionResolveRequest.type, pipe!);
    const after = applyEdits(STATS, editsFor(resolved.edit, uri));
    console.info(`${pipe!.title}:\n${changedLines(STATS, after)}`);
    expect(after).toContain('    name |> String.downcase() |> String.trim()\n');
  });

  it('fixes every safe finding in the file', async () => {
    const uri = open('fix_all.ex', STATS);
    const action = offeredActions(
      await connection.sendRequest(CodeActionRequest.type, fixAllParams(uri)),
    ).find(isFixAll);
    expect(action).toBeDefined();
    const resolved = await connection.sendRequest(CodeActionResolveRequest.type, action!);
    const after = applyEdits(STATS, editsFor(resolved.edit, uri));
    console.info(`Fix all idioms in file (${action!.title}):\n${changedLines(STATS, after)}`);
    // single_pipe as well: `users |> Enum.count(f)` becomes `Enum.count(users, f)`.
    expect(after).toContain('    Enum.count(users, & &1.active)\n');
    expect(after).toContain('    name |> String.downcase() |> String.trim()\n');
  });

  it('applies workspace/didChangeConfiguration with the settings object the extension sends', async () => {
    const uri = open('config.ex', STATS);
    const range = { start: { line: 3, character: 4 }, end: { line: 3, character: 52 } };
    const hasRule = async () =>
      (await actionsAt(uri, range)).some((a) =>
        a.title.startsWith('Make idiomatic: Enum.filter |> Enum.count'),
      );
    expect(await hasRule()).toBe(true);
    await connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: defaultSettings({ 'idioms.disabledRules': ['enum_filter_count'] }),
    });
    expect(await hasRule()).toBe(false);
    await connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: defaultSettings(),
    });
    expect(await hasRule()).toBe(true);
    expect(messages.map((m) => m.message)).toEqual([]);
  });

  it('lists a registry\'s versions for "Switch model version"', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'registry-'));
    try {
      python(WRITE_VERSION, root);
      await connection.sendNotification(DidChangeConfigurationNotification.type, {
        settings: defaultSettings({ 'model.registry': root }),
      });
      let registry = (await status()).registry;
      for (let tries = 0; registry.root !== root && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        registry = (await status()).registry;
      }
      expect(registry.versions).toBeUndefined(); // only on request: it reads the registry from disk
      const listed = (await connection.sendRequest<Status>(STATUS_REQUEST, { withVersions: true })).registry;
      expect(listed).toMatchObject({ root, channelVersion: null, channelHistory: [], versionsError: null });
      expect(listed.versions).toEqual([
        {
          id: '3d27d4bf0123abcd',
          kind: 'adapter',
          runName: 'smollm2-cpu',
          createdAt: '2026-03-01T12:00:00Z',
          promptFormat: 'devstral-elixir/1',
          baseName: 'SmolLM2',
        },
      ]);
    } finally {
      await connection.sendNotification(DidChangeConfigurationNotification.type, {
        settings: defaultSettings(),
      });
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('answers devstralElixir/pinVersion as "Switch model version" expects', async () => {
    const following = await connection.sendRequest<Status['registry']>(PIN_VERSION_REQUEST, {
      version: null,
    });
    expect(following).toMatchObject({ root: null, pinned: null });
    const refused = connection.sendRequest(PIN_VERSION_REQUEST, { version: '3d27d4bf' });
    await expect(refused).rejects.toBeInstanceOf(ResponseError);
    await expect(refused).rejects.toThrow(/model\.registry/);
  });
});
