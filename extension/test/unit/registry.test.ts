import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { RegistryStatus } from '../../src/protocol';
import { readChannel, readVersions, versionChoices } from '../../src/registry';
import { missingPython, python } from '../python';

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

function registry(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'registry-'));
  roots.push(root);
  const version = (id: string, createdAt: string, kind = 'adapter') => {
    mkdirSync(path.join(root, 'versions', id), { recursive: true });
    writeFileSync(
      path.join(root, 'versions', id, 'manifest.json'),
      JSON.stringify({
        id,
        kind,
        created_at: createdAt,
        run_name: `run-${id.slice(0, 2)}`,
        prompt_format: 'devstral-elixir/1',
      }),
    );
  };
  version('aaaa111122223333', '2026-01-01T00:00:00Z');
  version('bbbb111122223333', '2026-02-01T00:00:00Z', 'model');
  mkdirSync(path.join(root, 'versions', '.tmp-half-written'));
  mkdirSync(path.join(root, 'versions', 'cccc-no-manifest'));
  mkdirSync(path.join(root, 'channels'));
  writeFileSync(
    path.join(root, 'channels', 'stable.json'),
    JSON.stringify({ version: 'bbbb111122223333', history: ['aaaa111122223333'] }),
  );
  return root;
}

const status: RegistryStatus = {
  root: '/r',
  channel: 'stable',
  activeVersion: 'bbbb111122223333',
  pinned: null,
  loading: false,
  lastError: null,
};

describe('registry', () => {
  it('lists complete versions, newest first, and reads the channel', async () => {
    const root = registry();
    const versions = await readVersions(root);
    expect(versions.map((v) => [v.id, v.kind, v.runName])).toEqual([
      ['bbbb111122223333', 'model', 'run-bb'],
      ['aaaa111122223333', 'adapter', 'run-aa'],
    ]);
    expect(await readChannel(root, 'stable')).toEqual({
      version: 'bbbb111122223333',
      history: ['aaaa111122223333'],
    });
    expect(await readChannel(root, 'canary')).toEqual({ version: null, history: [] });
    expect(await readVersions(path.join(root, 'missing'))).toEqual([]);
  });

  it('offers following the channel first, then each version with its role', async () => {
    const root = registry();
    const choices = versionChoices(status, await readChannel(root, 'stable'), await readVersions(root));
    expect(choices.map((c) => [c.label, c.description, c.version])).toEqual([
      ["$(arrow-right) Follow channel 'stable'", 'bbbb1111 · serving', null],
      ['bbbb1111', "model · active in 'stable'", 'bbbb111122223333'],
      ['aaaa1111', 'adapter · earlier in the channel', 'aaaa111122223333'],
    ]);
    expect(choices[1].detail).toBe('run run-bb · 2026-02-01T00:00:00Z · prompt format devstral-elixir/1');
  });

  it('marks the pinned version', () => {
    const pinned = { ...status, activeVersion: 'aaaa111122223333', pinned: 'aaaa' };
    const choices = versionChoices(pinned, { version: 'bbbb111122223333', history: [] }, [
      { id: 'aaaa111122223333', kind: 'adapter', runName: '', createdAt: '', promptFormat: '' },
    ]);
    expect(choices[0].description).toBe('bbbb1111');
    expect(choices[1].description).toBe('adapter · serving (pinned)');
  });
});

// The manifest as lsp/registry.py (and so `finetune registry`) writes it.
const WRITE_MANIFEST = `
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

describe.skipIf(missingPython() !== undefined)('registry written by the Python side', () => {
  it('reads the fields lsp/registry.py writes', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'registry-py-'));
    roots.push(root);
    python(WRITE_MANIFEST, root);
    expect(await readVersions(root)).toEqual([
      {
        id: '3d27d4bf0123abcd',
        kind: 'adapter',
        runName: 'smollm2-cpu',
        createdAt: '2026-03-01T12:00:00Z',
        promptFormat: 'devstral-elixir/1',
      },
    ]);
  });
});
