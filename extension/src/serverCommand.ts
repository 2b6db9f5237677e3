// Which program starts the language server. Pure: the file system and PATH come in through `Host`.

import * as path from 'node:path';

export const SERVER_EXECUTABLE = 'devstral-elixir-lsp';

export interface Host {
  platform: NodeJS.Platform;
  /** The PATH environment variable. */
  pathEnv: string | undefined;
  isFile(file: string): boolean;
}

export interface ServerSource {
  /** `devstralElixir.server.command`, already expanded; empty = not set. */
  command: string[];
  /** `devstralElixir.server.pythonPath`, already expanded; empty = not set. */
  pythonPath: string;
  /** The Python extension's selected environment: its interpreter, or its folder. */
  selectedPython?: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log. */
  origin: string;
}

export type Resolution = { ok: true; server: ServerCommand } | { ok: false; message: string };

function paths(host: Host): path.PlatformPath {
  return host.platform === 'win32' ? path.win32 : path.posix;
}

function executableNames(host: Host, name: string): string[] {
  return host.platform === 'win32' ? [`${name}.exe`, `${name}.cmd`, name] : [name];
}

/** A program name looked up on PATH, or a path checked as given; undefined when it is not there. */
export function findProgram(host: Host, program: string): string | undefined {
  const p = paths(host);
  if (program.includes('/') || program.includes(p.sep)) {
    return host.isFile(program) ? program : undefined;
  }
  for (const folder of (host.pathEnv ?? '').split(p.delimiter).filter(Boolean)) {
    for (const name of executableNames(host, program)) {
      const candidate = p.join(folder, name);
      if (host.isFile(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** `devstral-elixir-lsp` installed beside a Python interpreter (a venv's bin/ or Scripts\), or in the
 * bin/ (Scripts\) of an environment folder. */
export function besidePython(host: Host, python: string): string | undefined {
  const p = paths(host);
  const folder = host.isFile(python)
    ? p.dirname(python)
    : p.join(python, host.platform === 'win32' ? 'Scripts' : 'bin');
  return executableNames(host, SERVER_EXECUTABLE)
    .map((name) => p.join(folder, name))
    .find((candidate) => host.isFile(candidate));
}

export function resolveServerCommand(source: ServerSource, host: Host): Resolution {
  if (source.command.length > 0) {
    const [program, ...args] = source.command;
    const found = findProgram(host, program);
    if (found === undefined) {
      return {
        ok: false,
        message: `The setting devstralElixir.server.command names "${program}", which ${
          program.includes('/') || program.includes('\\') ? 'does not exist' : 'is not on PATH'
        }.`,
      };
    }
    return { ok: true, server: { command: found, args, origin: 'setting devstralElixir.server.command' } };
  }
  if (source.pythonPath) {
    if (!host.isFile(source.pythonPath)) {
      return {
        ok: false,
        message: `The setting devstralElixir.server.pythonPath names "${source.pythonPath}", which does not exist.`,
      };
    }
    const script = besidePython(host, source.pythonPath);
    const origin = 'setting devstralElixir.server.pythonPath';
    return {
      ok: true,
      server: script
        ? { command: script, args: [], origin }
        : { command: source.pythonPath, args: ['-m', 'lsp'], origin },
    };
  }
  const onPath = findProgram(host, SERVER_EXECUTABLE);
  if (onPath !== undefined) {
    return { ok: true, server: { command: onPath, args: [], origin: 'PATH' } };
  }
  const inSelected = source.selectedPython ? besidePython(host, source.selectedPython) : undefined;
  if (inSelected !== undefined) {
    return { ok: true, server: { command: inSelected, args: [], origin: 'the selected Python environment' } };
  }
  const looked = source.selectedPython
    ? `on PATH nor beside the selected Python interpreter (${source.selectedPython})`
    : 'on PATH';
  return {
    ok: false,
    message:
      `Cannot find the language server: ${SERVER_EXECUTABLE} is not ${looked}. ` +
      'Set devstralElixir.server.pythonPath to the Python of the environment it is installed in, ' +
      'or devstralElixir.server.command to the command that starts it.',
  };
}
