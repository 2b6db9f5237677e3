// VS Code configuration → the server's settings object (initializationOptions and
// workspace/didChangeConfiguration). Pure: the caller hands in a reader for the configuration.

export const SECTION = 'devstralElixir';

// Read by the extension itself; everything else in the section is a server setting, sent unchanged.
const CLIENT_ONLY_PREFIXES = ['server.', 'trace.'];

// Server settings that name files or folders: `~`, `${userHome}` and `${workspaceFolder}` are expanded.
export const PATH_SETTINGS: ReadonlySet<string> = new Set([
  'model.path',
  'model.registry',
  'idioms.elixirPath',
]);

export type SettingValue = string | number | boolean | string[];
export interface ServerSettings {
  [key: string]: SettingValue | ServerSettings;
}

/** The contributed configuration of package.json, as far as this module reads it. */
export interface Manifest {
  // `| undefined`: TypeScript types package.json's groups as one union with each other's keys optional.
  contributes: { configuration: { properties: Record<string, { default?: unknown } | undefined> }[] };
}

export interface PathContext {
  home: string;
  workspaceFolder?: string;
}

/** Setting keys without the section prefix, e.g. `completion.maxTokens`, in manifest order. */
export function contributedKeys(manifest: Manifest): string[] {
  return manifest.contributes.configuration.flatMap((group) =>
    Object.keys(group.properties).map((name) => name.slice(SECTION.length + 1)),
  );
}

export function contributedDefaults(manifest: Manifest): Map<string, unknown> {
  const defaults = new Map<string, unknown>();
  for (const group of manifest.contributes.configuration) {
    for (const [name, schema] of Object.entries(group.properties)) {
      defaults.set(name.slice(SECTION.length + 1), schema?.default);
    }
  }
  return defaults;
}

export function isServerSetting(key: string): boolean {
  return !CLIENT_ONLY_PREFIXES.some((prefix) => key.startsWith(prefix));
}

export function expandPath(value: string, context: PathContext): string {
  let expanded = value.replace(/\$\{userHome\}/g, context.home);
  if (context.workspaceFolder !== undefined) {
    expanded = expanded.replace(/\$\{workspaceFolder\}/g, context.workspaceFolder);
  }
  if (expanded === '~' || expanded.startsWith('~/')) {
    expanded = context.home + expanded.slice(1);
  }
  return expanded;
}

/**
 * `{ "completion.maxTokens": 64, ... }` → `{ completion: { maxTokens: 64 }, ... }` for every server
 * setting among `keys`; values `read` returns as undefined are left out (the server uses its default).
 */
export function serverSettings(
  keys: readonly string[],
  read: (key: string) => unknown,
  paths: PathContext,
): ServerSettings {
  const settings: ServerSettings = {};
  for (const key of keys.filter(isServerSetting)) {
    let value = read(key);
    if (value === undefined || value === null) {
      continue;
    }
    if (typeof value === 'string' && PATH_SETTINGS.has(key)) {
      value = expandPath(value, paths);
    }
    setDotted(settings, key, value as SettingValue);
  }
  return settings;
}

function setDotted(target: ServerSettings, key: string, value: SettingValue): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (typeof child !== 'object' || Array.isArray(child)) {
      node[part] = {};
    }
    node = node[part] as ServerSettings;
  }
  node[parts[parts.length - 1]] = value;
}

/** Whether a configuration change needs a new server process rather than a settings update. */
export function needsRestart(affects: (key: string) => boolean): boolean {
  return affects(`${SECTION}.server`);
}
