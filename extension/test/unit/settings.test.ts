import { beforeAll, describe, expect, it } from 'vitest';

import manifest from '../../package.json';
import {
  contributedDefaults,
  contributedKeys,
  expandPath,
  isServerSetting,
  needsRestart,
  serverSettings,
} from '../../src/settings';
import { missingPython, serverProblems, type ServerSetting, serverSettingsSchema } from '../python';

const keys = contributedKeys(manifest);
const defaults = contributedDefaults(manifest);
const schemas = new Map(
  manifest.contributes.configuration.flatMap((group) =>
    Object.entries(group.properties).map(([name, schema]) => [
      name.replace(/^devstralElixir\./, ''),
      schema as Schema,
    ]),
  ),
);
const home = { home: '/home/ana', workspaceFolder: '/work/shop' };

interface Schema {
  type: string;
  default: unknown;
  markdownDescription?: string;
  description?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
}

describe('serverSettings', () => {
  it('nests dotted keys as the server reads them and leaves out the client-only ones', () => {
    const values: Record<string, unknown> = {
      'server.command': ['x'],
      'trace.server': 'verbose',
      'completion.maxTokens': 32,
      'completion.enabled': false,
      'idioms.disabledRules': ['single_pipe'],
      logLevel: 'debug',
    };
    const settings = serverSettings(Object.keys(values), (key) => values[key], home);
    expect(settings).toEqual({
      completion: { maxTokens: 32, enabled: false },
      idioms: { disabledRules: ['single_pipe'] },
      logLevel: 'debug',
    });
  });

  it('expands ~, ${userHome} and ${workspaceFolder} in path settings only', () => {
    const values: Record<string, unknown> = {
      'model.path': '~/models/qwen.gguf',
      'model.registry': '${workspaceFolder}/registry',
      'idioms.elixirPath': '${userHome}/.asdf/shims/elixir',
      'model.name': '~not-a-path',
    };
    expect(serverSettings(Object.keys(values), (key) => values[key], home)).toEqual({
      model: { path: '/home/ana/models/qwen.gguf', registry: '/work/shop/registry', name: '~not-a-path' },
      idioms: { elixirPath: '/home/ana/.asdf/shims/elixir' },
    });
  });

  it('leaves out what the configuration does not have', () => {
    expect(serverSettings(['completion.maxTokens'], () => undefined, home)).toEqual({});
  });

  it('keeps ${workspaceFolder} when there is no folder', () => {
    expect(expandPath('${workspaceFolder}/m.gguf', { home: '/h' })).toBe('${workspaceFolder}/m.gguf');
    expect(expandPath('~', { home: '/h' })).toBe('/h');
  });

  it('restarts the server only for server.* settings', () => {
    expect(needsRestart((key) => key === 'devstralElixir.server')).toBe(true);
    expect(needsRestart((key) => key === 'devstralElixir.model')).toBe(false);
  });
});

describe('package.json configuration', () => {
  it('describes every setting and gives it a default', () => {
    for (const [key, schema] of schemas) {
      expect(schema.markdownDescription ?? schema.description, key).toBeTruthy();
      expect(schema.default, key).not.toBeUndefined();
    }
  });

  it('has the settings the issue asks for', () => {
    for (const key of [
      'server.command',
      'server.pythonPath',
      'model.path',
      'model.backend',
      'model.url',
      'model.channel',
      'completion.maxTokens',
      'completion.debounceMs',
      'context.prefixTokens',
      'context.suffixTokens',
      'idioms.enabled',
      'idioms.disabledRules',
      'idioms.diagnostics',
      'logLevel',
    ]) {
      expect(keys).toContain(key);
    }
  });
});

describe.skipIf(missingPython() !== undefined)('package.json against lsp/config.py', () => {
  // Read in the hook: vitest runs a skipped suite's body too.
  let server: Record<string, ServerSetting>;
  beforeAll(() => {
    server = serverSettingsSchema();
  });
  const contributed = keys.filter(isServerSetting);

  it('contributes exactly the server settings, with the server defaults and types', () => {
    expect([...contributed].sort()).toEqual(Object.keys(server).sort());
    for (const key of contributed) {
      expect(defaults.get(key), key).toEqual(server[key].default);
      expect(schemas.get(key)?.type, key).toBe(server[key].type);
    }
  });

  it('sends initializationOptions from the defaults that the server takes without a complaint', () => {
    const settings = serverSettings(keys, (key) => defaults.get(key), home);
    expect(serverProblems([settings, { devstralElixir: settings }])).toEqual([[], []]);
  });

  it('declares enums and bounds the server accepts, and no wider', () => {
    const withValue = (key: string, value: unknown) => serverSettings([key], () => value, home);
    const accepted: unknown[] = [];
    const rejected: { key: string; settings: unknown }[] = [];
    for (const [key, schema] of schemas) {
      if (!isServerSetting(key)) continue;
      for (const value of schema.enum ?? []) accepted.push(withValue(key, value));
      if (schema.minimum !== undefined) {
        accepted.push(withValue(key, schema.minimum));
        rejected.push({ key, settings: withValue(key, schema.minimum - 1) });
      }
      if (schema.maximum !== undefined) {
        accepted.push(withValue(key, schema.maximum));
        rejected.push({ key, settings: withValue(key, schema.maximum + 1) });
      }
    }
    expect(serverProblems(accepted).flat().join('\n')).toBe('');
    const problems = serverProblems(rejected.map((r) => r.settings));
    rejected.forEach(({ key }, i) => {
      expect(problems[i].join('\n'), key).toContain(`'${key}'`);
    });
  });
});

if (missingPython() !== undefined) {
  console.warn(`skipped the comparison with lsp/config.py: ${missingPython()}`);
}
