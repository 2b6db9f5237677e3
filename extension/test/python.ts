// The Python side, for tests that compare the extension with the real server: its interpreter and
// executable in the repository's venv (or where DEVSTRAL_PYTHON / DEVSTRAL_LSP say).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export const EXTENSION_ROOT = path.resolve(__dirname, '..');
export const REPO_ROOT = path.resolve(EXTENSION_ROOT, '..');

export const PYTHON = process.env.DEVSTRAL_PYTHON ?? path.join(REPO_ROOT, '.venv', 'bin', 'python');
export const SERVER = process.env.DEVSTRAL_LSP ?? path.join(REPO_ROOT, '.venv', 'bin', 'devstral-elixir-lsp');

export function missingPython(): string | undefined {
  return existsSync(PYTHON)
    ? undefined
    : `no Python with the server at ${PYTHON} (run \`make setup\`, or set DEVSTRAL_PYTHON)`;
}

export function missingServer(): string | undefined {
  return existsSync(SERVER)
    ? undefined
    : `no server executable at ${SERVER} (run \`make setup\`, or set DEVSTRAL_LSP)`;
}

/** Runs `code` with the server's Python; stdin and stdout are JSON. */
export function python<T>(code: string, input: unknown = null): T {
  const output = execFileSync(PYTHON, ['-c', code], {
    cwd: REPO_ROOT,
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  return JSON.parse(output) as T;
}

export interface ServerSetting {
  default: unknown;
  /** boolean | integer | number | string | array */
  type: string;
}

// Every setting of lsp/config.py's Settings, by its dotted camelCase name, with its default and JSON type.
const DUMP_SETTINGS = `
import dataclasses, json, re, typing
from lsp.config import Settings
KINDS = {bool: "boolean", int: "integer", float: "number", str: "string", list[str]: "array"}
def walk(node, prefix, out):
    hints = typing.get_type_hints(type(node))
    for f in dataclasses.fields(node):
        name = prefix + re.sub(r"_([a-z])", lambda m: m[1].upper(), f.name)
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            walk(value, name + ".", out)
        else:
            out[name] = {"default": value, "type": KINDS[hints[f.name]]}
    return out
print(json.dumps(walk(Settings(), "", {})))
`;

export function serverSettingsSchema(): Record<string, ServerSetting> {
  return python(DUMP_SETTINGS);
}

// lsp/config.py's parse_settings on each object read from stdin: the problems it reports for each.
const PARSE_SETTINGS = `
import json, sys
from lsp.config import parse_settings
print(json.dumps([parse_settings(raw)[1] for raw in json.load(sys.stdin)]))
`;

export function serverProblems(settings: unknown[]): string[][] {
  return python(PARSE_SETTINGS, settings);
}
