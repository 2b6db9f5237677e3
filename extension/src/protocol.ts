// The server's requests beyond LSP (lsp/server.py) and the parts of their answers the extension reads.

export const STATUS_REQUEST = 'devstralElixir/status';
export const PIN_VERSION_REQUEST = 'devstralElixir/pinVersion';
export const FIX_ALL_KIND = 'source.fixAll.devstralElixir';
export const MODEL_ACTION_TITLE = 'Make idiomatic (model)';

export interface StatusParams {
  uri?: string;
  withPrompt?: boolean;
  /** Adds the registry's versions and the channel's history (read from disk: for the picker only). */
  withVersions?: boolean;
}

export interface PinVersionParams {
  /** A version id or unique prefix; null follows the channel again. */
  version: string | null;
}

export interface RegistryStatus {
  root: string | null;
  channel: string;
  activeVersion: string | null;
  pinned: string | null;
  loading: boolean;
  lastError: string | null;
  /** With `withVersions`: */
  channelVersion?: string | null;
  channelHistory?: string[];
  versions?: VersionInfo[];
  versionsError?: string | null;
}

/** A registry version as the server lists it, newest first. */
export interface VersionInfo {
  id: string;
  kind: string;
  runName: string;
  createdAt: string;
  promptFormat: string;
  baseName: string;
}

export interface Status {
  version: string;
  promptFormat: string;
  backend: string;
  model: string | null;
  modelPath: string | null;
  fim: boolean | null;
  modelError: string | null;
  registry: RegistryStatus;
  requests: {
    served: number;
    fromCache: number;
    latencyMs: { p50: number | null; p95: number | null; max: number | null };
    [counter: string]: unknown;
  };
  [key: string]: unknown;
}
