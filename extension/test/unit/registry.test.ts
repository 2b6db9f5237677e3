import { describe, expect, it } from 'vitest';

import type { RegistryStatus, VersionInfo } from '../../src/protocol';
import { versionChoices } from '../../src/registry';

const version = (id: string, kind: string, createdAt: string): VersionInfo => ({
  id,
  kind,
  runName: `run-${id.slice(0, 2)}`,
  createdAt,
  promptFormat: 'devstral-elixir/1',
  baseName: 'SmolLM2',
});

// What `devstralElixir/status` with `withVersions` answers (lsp/hotswap.py registry_status).
const status: RegistryStatus = {
  root: '/r',
  channel: 'stable',
  activeVersion: 'bbbb111122223333',
  pinned: null,
  loading: false,
  lastError: null,
  channelVersion: 'bbbb111122223333',
  channelHistory: ['aaaa111122223333'],
  versions: [
    version('bbbb111122223333', 'model', '2026-02-01T00:00:00Z'),
    version('aaaa111122223333', 'adapter', '2026-01-01T00:00:00Z'),
  ],
  versionsError: null,
};

describe('versionChoices', () => {
  it('offers following the channel first, then each version with its role', () => {
    const choices = versionChoices(status);
    expect(choices.map((c) => [c.label, c.description, c.version])).toEqual([
      ["$(arrow-right) Follow channel 'stable'", 'bbbb1111 · serving', null],
      ['bbbb1111', "model · active in 'stable'", 'bbbb111122223333'],
      ['aaaa1111', 'adapter · earlier in the channel', 'aaaa111122223333'],
    ]);
    expect(choices[1].detail).toBe('run run-bb · 2026-02-01T00:00:00Z · prompt format devstral-elixir/1');
  });

  it('marks the pinned version', () => {
    const pinned = { ...status, activeVersion: 'aaaa111122223333', pinned: 'aaaa', channelHistory: [] };
    const choices = versionChoices(pinned);
    expect(choices[0].description).toBe('bbbb1111');
    expect(choices[2].description).toBe('adapter · serving (pinned)');
  });

  it('follows the base model when nothing was promoted', () => {
    const empty = { ...status, activeVersion: null, channelVersion: null, channelHistory: [], versions: [] };
    expect(versionChoices(empty).map((c) => c.description)).toEqual(['the base model · serving']);
  });
});
