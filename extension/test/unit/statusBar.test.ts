import { describe, expect, it } from 'vitest';

import type { Status } from '../../src/protocol';
import { modelLabel, statusBarView } from '../../src/statusBar';

function status(overrides: Partial<Status> = {}, registry: Partial<Status['registry']> = {}): Status {
  return {
    version: '0.1.0',
    promptFormat: 'devstral-elixir/1',
    backend: 'llama_cpp',
    model: 'SmolLM2-135M-Instruct',
    modelPath: '/m.gguf',
    fim: false,
    modelError: null,
    registry: {
      root: null,
      channel: 'stable',
      activeVersion: null,
      pinned: null,
      loading: false,
      lastError: null,
      ...registry,
    },
    requests: { served: 12, fromCache: 3, latencyMs: { p50: 80, p95: 210, max: 400 } },
    ...overrides,
  };
}

describe('statusBarView', () => {
  it('shows the model and the last completion latency', () => {
    const view = statusBarView(status(), 84.4);
    expect(view.text).toBe('$(sparkle) SmolLM2-135M-Instruct · 84 ms');
    expect(view.tooltip).toContain('p50 80 ms, p95 210 ms over 12 completions');
    expect(view.severity).toBe('ok');
  });

  it('shows the registry version, a pin and a swap in progress', () => {
    const view = statusBarView(
      status({}, { root: '/r', activeVersion: '3d27d4bf0123abcd', pinned: '3d27', loading: true }),
      undefined,
    );
    expect(view.text).toBe('$(sync~spin) SmolLM2-135M-Instruct@3d27d4bf (pinned)');
    expect(view.tooltip).toContain("registry channel 'stable': 3d27d4bf0123abcd, pinned to 3d27");
    const failedSwap = statusBarView(
      status({}, { root: '/r', lastError: 'cannot serve version 9f' }),
      undefined,
    );
    expect(failedSwap.severity).toBe('warning');
    expect(failedSwap.tooltip).toContain('registry: cannot serve version 9f');
  });

  it('says when the model could not be loaded, and while it loads', () => {
    const failed = statusBarView(status({ model: null, modelError: 'model file not found' }), undefined);
    expect(failed.severity).toBe('error');
    expect(failed.tooltip).toContain('model file not found');
    expect(statusBarView(status({ model: null }), undefined).tooltip).toContain('loading the model');
    expect(statusBarView(undefined, undefined).text).toContain('DevstralElixir');
  });

  it('shortens long model names', () => {
    expect(modelLabel(status({ model: 'qwen2.5-coder-1.5b-instruct-q4_k_m-very-long' }))).toBe(
      'qwen2.5-coder-1.5b-instruct-q4_…',
    );
    // The embedded model's GGUF name fits.
    expect(modelLabel(status({ model: 'Smollm2 135M 8k Lc100K Mix1 Ep2' }))).toBe(
      'Smollm2 135M 8k Lc100K Mix1 Ep2',
    );
  });
});
