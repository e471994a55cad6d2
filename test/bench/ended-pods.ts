import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../scheduler/config.js';
import { projectRoot } from '../../scheduler/substrate/create.js';
import { LocalSubstrate, type LocalPodStatus } from '../../scheduler/substrate/local/local-substrate.js';

/**
 * A local substrate with its attempts under `<home>/attempts`, and each pod's status as it was the
 * moment the pod ended (the reaper removes the attempt's state soon after the verdict), by name.
 */
export function localSubstrateWithEndedPods(
  config: Config,
  home: string,
  log: Logger,
): { substrate: LocalSubstrate; pods: Map<string, LocalPodStatus> } {
  const substrate = new LocalSubstrate({ config, stateDir: path.join(home, 'attempts'), programsRoot: projectRoot(), log });
  const pods = new Map<string, LocalPodStatus>();
  substrate.onChange((name) => {
    try {
      pods.set(name, JSON.parse(readFileSync(path.join(home, 'attempts', name, 'status.json'), 'utf8')) as LocalPodStatus);
    } catch {
      // Stopped meanwhile: no status for this one.
    }
  });
  return { substrate, pods };
}
