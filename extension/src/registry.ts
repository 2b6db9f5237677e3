// The versions of a model registry (the layout `finetune registry` writes, read by lsp/registry.py),
// for the "Switch model version" picker. The server's status names the registry folder but does not
// list its versions, so they are read from disk here.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import type { RegistryStatus } from './protocol';
import { shortVersion } from './statusBar';

export interface VersionInfo {
  id: string;
  kind: string;
  runName: string;
  createdAt: string;
  promptFormat: string;
}

export interface ChannelInfo {
  version: string | null;
  history: string[];
}

export interface Choice {
  label: string;
  description: string;
  detail?: string;
  /** What to send as devstralElixir/pinVersion's `version`: null = follow the channel. */
  version: string | null;
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const data: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    return typeof data === 'object' && data !== null && !Array.isArray(data)
      ? (data as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** Every readable version, newest first; folders without a readable manifest are skipped. */
export async function readVersions(root: string): Promise<VersionInfo[]> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(root, 'versions'));
  } catch {
    return [];
  }
  const versions: VersionInfo[] = [];
  // Writers build a version in a dot-named folder and rename it when complete.
  for (const name of names.filter((n) => !n.startsWith('.'))) {
    const manifest = await readJson(path.join(root, 'versions', name, 'manifest.json'));
    if (manifest !== undefined && text(manifest.id) === name) {
      versions.push({
        id: name,
        kind: text(manifest.kind),
        runName: text(manifest.run_name),
        createdAt: text(manifest.created_at),
        promptFormat: text(manifest.prompt_format),
      });
    }
  }
  return versions.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
}

export async function readChannel(root: string, channel: string): Promise<ChannelInfo> {
  const data = await readJson(path.join(root, 'channels', `${channel}.json`));
  const version = typeof data?.version === 'string' ? data.version : null;
  const history = Array.isArray(data?.history)
    ? data.history.filter((v): v is string => typeof v === 'string')
    : [];
  return { version, history };
}

/** The picker's entries: "follow the channel" first, then every version with what it is. */
export function versionChoices(
  registry: RegistryStatus,
  channel: ChannelInfo,
  versions: VersionInfo[],
): Choice[] {
  const following = channel.version ? shortVersion(channel.version) : 'the base model';
  const choices: Choice[] = [
    {
      label: `$(arrow-right) Follow channel '${registry.channel}'`,
      description: `${following}${registry.pinned ? '' : ' · serving'}`,
      version: null,
    },
  ];
  for (const version of versions) {
    const tags = [
      version.kind,
      version.id === channel.version ? `active in '${registry.channel}'` : '',
      channel.history.includes(version.id) ? 'earlier in the channel' : '',
      version.id === registry.activeVersion && registry.pinned ? 'serving (pinned)' : '',
    ];
    choices.push({
      label: shortVersion(version.id),
      description: tags.filter(Boolean).join(' · '),
      detail: [
        version.runName && `run ${version.runName}`,
        version.createdAt,
        version.promptFormat && `prompt format ${version.promptFormat}`,
      ]
        .filter(Boolean)
        .join(' · '),
      version: version.id,
    });
  }
  return choices;
}
