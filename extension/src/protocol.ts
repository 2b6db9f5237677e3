// The server's requests beyond LSP (lsp/server.py) and the parts of their answers the extension reads.

export const STATUS_REQUEST = 'devstralElixir/status';
export const PIN_VERSION_REQUEST = 'devstralElixir/pinVersion';
export const FIX_ALL_KIND = 'source.fixAll.devstralElixir';
export const MODEL_ACTION_TITLE = 'Make idiomatic (model)';

export interface StatusParams {
  uri?: string;
  withPrompt?: boolean;
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
