// The "Switch model version" picker's entries, from the versions the server lists
// (`devstralElixir/status` with `withVersions`): the server owns the registry's format.

import type { RegistryStatus } from './protocol';
import { shortVersion } from './statusBar';

export interface Choice {
  label: string;
  description: string;
  detail?: string;
  /** What to send as devstralElixir/pinVersion's `version`: null = follow the channel. */
  version: string | null;
}

/** The picker's entries: "follow the channel" first, then every version with what it is. */
export function versionChoices(registry: RegistryStatus): Choice[] {
  const channelVersion = registry.channelVersion ?? null;
  const history = registry.channelHistory ?? [];
  const following = channelVersion ? shortVersion(channelVersion) : 'the base model';
  const choices: Choice[] = [
    {
      label: `$(arrow-right) Follow channel '${registry.channel}'`,
      description: `${following}${registry.pinned ? '' : ' · serving'}`,
      version: null,
    },
  ];
  for (const version of registry.versions ?? []) {
    const tags = [
      version.kind,
      version.id === channelVersion ? `active in '${registry.channel}'` : '',
      history.includes(version.id) ? 'earlier in the channel' : '',
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
