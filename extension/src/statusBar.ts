// What the status bar item shows for a server status. Pure.

import type { Status } from './protocol';

export interface StatusBarView {
  text: string;
  tooltip: string;
  severity: 'ok' | 'warning' | 'error';
}

const MAX_MODEL_CHARS = 32;

export function shortVersion(id: string): string {
  return id.slice(0, 8);
}

/** "SmolLM2-135M-Instruct", plus "@3d27d4bf" for a registry version and " (pinned)" for a pin. */
export function modelLabel(status: Status): string {
  const name = status.model ?? status.backend;
  const model = name.length > MAX_MODEL_CHARS ? `${name.slice(0, MAX_MODEL_CHARS - 1)}…` : name;
  const { activeVersion, pinned } = status.registry;
  const version = activeVersion ? `@${shortVersion(activeVersion)}` : '';
  return `${model}${version}${pinned ? ' (pinned)' : ''}`;
}

export function statusBarView(status: Status | undefined, lastLatencyMs: number | undefined): StatusBarView {
  if (status === undefined) {
    return {
      text: '$(loading~spin) DevstralElixir',
      tooltip: 'DevstralElixir: starting the server',
      severity: 'ok',
    };
  }
  if (status.modelError) {
    return {
      text: '$(error) DevstralElixir',
      tooltip: `DevstralElixir: no completions: ${status.modelError}\nClick for the status.`,
      severity: 'error',
    };
  }
  if (status.model === null) {
    return {
      text: '$(loading~spin) DevstralElixir',
      tooltip: 'DevstralElixir: loading the model',
      severity: 'ok',
    };
  }
  const icon = status.registry.loading ? '$(sync~spin)' : '$(sparkle)';
  const latency = lastLatencyMs === undefined ? '' : ` · ${Math.round(lastLatencyMs)} ms`;
  const { p50, p95 } = status.requests.latencyMs;
  const lines = [
    `DevstralElixir ${status.version}: ${status.model} via ${status.backend}`,
    status.registry.root
      ? `registry channel '${status.registry.channel}': ${status.registry.activeVersion ?? 'base model'}` +
        (status.registry.pinned ? `, pinned to ${status.registry.pinned}` : '')
      : 'no model registry',
    lastLatencyMs === undefined ? 'no completion yet' : `last completion ${Math.round(lastLatencyMs)} ms`,
    p50 === null
      ? ''
      : `server latency p50 ${p50} ms, p95 ${p95} ms over ${status.requests.served} completions`,
    status.registry.lastError ? `registry: ${status.registry.lastError}` : '',
    'Click for the status.',
  ];
  return {
    text: `${icon} ${modelLabel(status)}${latency}`,
    tooltip: lines.filter(Boolean).join('\n'),
    // A registry version that failed to load leaves the previous model serving: worth a look, not an error.
    severity: status.registry.lastError ? 'warning' : 'ok',
  };
}
