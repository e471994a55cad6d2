import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { SandboxPaths } from '../state-paths.js';
import { KubernetesSubstrate, loadKubeConfig } from './kubernetes/kubernetes-substrate.js';
import { LocalSubstrate } from './local/local-substrate.js';
import type { Substrate } from './substrate.js';

/** The project root (where package.json is), from this module whether it runs from source or dist/. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the proofpod project root (no package.json above the scheduler)');
    dir = parent;
  }
  return dir;
}

/**
 * The configured substrate, or undefined for an API-only scheduler. The local substrate's
 * directories are `sandboxes`, from prepareStatePaths (scheduler/state-paths.ts), which decides
 * where the programs the sandboxes run and the attempts are.
 */
export function createSubstrate(config: Config, log: Logger, sandboxes?: SandboxPaths): Substrate | undefined {
  switch (config.substrate) {
    case 'none':
      return undefined;
    case 'local': {
      if (!sandboxes) throw new Error('the local substrate needs its directories from prepareStatePaths');
      return new LocalSubstrate({ config, stateDir: sandboxes.attemptsDir, programsRoot: sandboxes.programsRoot, log });
    }
    case 'kubernetes':
      return new KubernetesSubstrate(config, loadKubeConfig(config.kubernetes.kubeconfig), log.child({ component: 'kubernetes' }));
  }
}
