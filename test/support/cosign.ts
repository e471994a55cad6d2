import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import path from 'node:path';
import { PREDICATE_TYPE } from '../../scheduler/attestation/verdict-statement.js';
import { findTool } from './helm.js';

/**
 * cosign as smoke/tools/build.sh builds it (or the one on PATH), verifying an attestation the way
 * docs/security.md tells a third party to: offline, with a public key file, the subject checked
 * against a git commit. `home` is an empty directory of the caller's, cosign's HOME. Throws when
 * there is no cosign: the interoperability tests fail, never skip.
 */
export function cosignVerify(home: string, publicKeyFile: string, commit: string, bundleFile: string): SpawnSyncReturns<string> {
  const cosign = findTool('cosign');
  if (!cosign) throw new Error('cosign not found: bash smoke/tools/build.sh builds it into ~/.cache/proofpod/tools');
  // No network, no cached trust root: whatever cosign would fetch, it cannot.
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    TUF_ROOT: path.join(home, 'tuf'),
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
  };
  return spawnSync(cosign, cosignVerifyArguments(publicKeyFile, commit, bundleFile), { encoding: 'utf8', env, timeout: 30_000 });
}

/**
 * The command docs/security.md gives, as arguments: the attestation as a Sigstore bundle (cosign
 * compares a `gitCommit` subject only in that form), no transparency log (`--insecure-ignore-tlog`:
 * a key-only verification has none, and without it cosign fetches Sigstore's trust root).
 */
export const cosignVerifyArguments = (publicKeyFile: string, commit: string, bundleFile: string) => [
  'verify-blob-attestation',
  '--key',
  publicKeyFile,
  '--bundle',
  bundleFile,
  '--type',
  PREDICATE_TYPE,
  '--insecure-ignore-tlog=true',
  '--digest',
  commit,
  '--digestAlg',
  'gitCommit',
];
