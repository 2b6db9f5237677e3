import { describe, expect, it } from 'vitest';

import { findProgram, type Host, resolveServerCommand } from '../../src/serverCommand';

function host(
  files: string[],
  pathEnv = '/usr/bin:/home/ana/.local/bin',
  platform: NodeJS.Platform = 'linux',
): Host {
  const set = new Set(files);
  return { platform, pathEnv, isFile: (file) => set.has(file) };
}

const none = { command: [], pythonPath: '' };

describe('resolveServerCommand', () => {
  it('takes the configured command as it is, looking a bare name up on PATH', () => {
    const h = host(['/usr/bin/devstral-elixir-lsp', '/opt/lsp']);
    expect(resolveServerCommand({ ...none, command: ['/opt/lsp', '--log-file', '/tmp/l'] }, h)).toEqual({
      ok: true,
      server: {
        command: '/opt/lsp',
        args: ['--log-file', '/tmp/l'],
        origin: 'setting devstralElixir.server.command',
      },
    });
    expect(resolveServerCommand({ ...none, command: ['devstral-elixir-lsp'] }, h)).toMatchObject({
      ok: true,
      server: { command: '/usr/bin/devstral-elixir-lsp' },
    });
  });

  it('names the setting when the configured command is not there', () => {
    const result = resolveServerCommand({ ...none, command: ['/opt/missing'] }, host([]));
    expect(result).toEqual({
      ok: false,
      message: 'The setting devstralElixir.server.command names "/opt/missing", which does not exist.',
    });
    const bare = resolveServerCommand({ ...none, command: ['nope'] }, host([]));
    expect(bare.ok || bare.message).toContain('is not on PATH');
  });

  it('runs the script beside the configured Python, else python -m lsp', () => {
    const venv = host(['/p/.venv/bin/python', '/p/.venv/bin/devstral-elixir-lsp']);
    expect(resolveServerCommand({ ...none, pythonPath: '/p/.venv/bin/python' }, venv)).toMatchObject({
      ok: true,
      server: { command: '/p/.venv/bin/devstral-elixir-lsp', args: [] },
    });
    const bare = host(['/usr/bin/python3']);
    expect(resolveServerCommand({ ...none, pythonPath: '/usr/bin/python3' }, bare)).toMatchObject({
      ok: true,
      server: {
        command: '/usr/bin/python3',
        args: ['-m', 'lsp'],
        origin: 'setting devstralElixir.server.pythonPath',
      },
    });
    const missing = resolveServerCommand({ ...none, pythonPath: '/nowhere/python' }, bare);
    expect(missing.ok || missing.message).toContain('devstralElixir.server.pythonPath');
  });

  it('prefers the settings over PATH, and PATH over the selected environment', () => {
    const h = host(['/usr/bin/devstral-elixir-lsp', '/env/bin/python', '/env/bin/devstral-elixir-lsp']);
    expect(resolveServerCommand({ ...none, selectedPython: '/env/bin/python' }, h)).toMatchObject({
      server: { command: '/usr/bin/devstral-elixir-lsp', origin: 'PATH' },
    });
    const noPath = host(['/env/bin/python', '/env/bin/devstral-elixir-lsp'], '/usr/bin');
    expect(resolveServerCommand({ ...none, selectedPython: '/env/bin/python' }, noPath)).toMatchObject({
      server: { command: '/env/bin/devstral-elixir-lsp', origin: 'the selected Python environment' },
    });
    // The Python extension may name the environment's folder rather than its interpreter.
    expect(resolveServerCommand({ ...none, selectedPython: '/env' }, noPath)).toMatchObject({
      server: { command: '/env/bin/devstral-elixir-lsp' },
    });
  });

  it('says where it looked and which settings to set when the server is nowhere', () => {
    const result = resolveServerCommand(
      { ...none, selectedPython: '/env/bin/python' },
      host(['/env/bin/python']),
    );
    expect(result.ok).toBe(false);
    const message = result.ok ? '' : result.message;
    expect(message).toContain(
      'devstral-elixir-lsp is not on PATH nor beside the selected Python interpreter (/env/bin/python)',
    );
    expect(message).toContain('devstralElixir.server.pythonPath');
    expect(message).toContain('devstralElixir.server.command');
  });

  it('finds .exe programs on a Windows PATH', () => {
    const h = host(['C:\\venv\\Scripts\\devstral-elixir-lsp.exe'], 'C:\\Windows;C:\\venv\\Scripts', 'win32');
    expect(findProgram(h, 'devstral-elixir-lsp')).toBe('C:\\venv\\Scripts\\devstral-elixir-lsp.exe');
  });
});
