/**
 * The dashboard at /ui in a real browser (Debian's Chromium driven by playwright-core) against a
 * real proofpod on a real Postgres. Attempts run on FakeCluster, a FAKE of a cluster that runs
 * nothing and plays the reporter: what is under test is the dashboard, not the provers. Each page
 * is written as a screenshot under test-results/ui/ and checked by structure (roles, headings,
 * rows), never by pixels.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proofpod } from '../scheduler/app.js';
import { finalJobStates } from '../scheduler/job-states.js';
import { dashboardCsp } from '../scheduler/api/routes/ui.js';
import { until } from './support/cluster.js';
import { createTestDatabase, createToken } from './support/database.js';
import { FakeCluster } from './support/fake-cluster.js';
import { call, fastLoops, jobRequest, startInstance } from './support/instance.js';

const executablePath = process.env.PROOFPOD_CHROMIUM ?? '/usr/bin/chromium';
// .ci/run installs it; the browser tier is part of the suite, so without it the file fails, saying why.
if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install chromium (or set PROOFPOD_CHROMIUM)`);
const screenshots = path.resolve('test-results', 'ui');
const hostile = '<img src=x onerror=alert(1)>';
const finalStates: string[] = [...finalJobStates];

const db = await createTestDatabase();

interface Watched {
  page: Page;
  /** Console errors and uncaught page errors: a CSP violation shows up here as "Refused to …". */
  problems: string[];
  dialogs: string[];
}

describe('the dashboard in Chromium, with FakeCluster (a fake cluster that runs nothing)', () => {
  let cluster: FakeCluster;
  let proofpod: Proofpod;
  let browser: Browser;
  let fork: string;
  let approver: string;
  let maintainer: string;
  let waitingId: string;
  let hostileId: string;
  const opened: Watched[] = [];

  beforeAll(async () => {
    cluster = new FakeCluster({ runMs: 30 });
    proofpod = await startInstance(db.url, { ...fastLoops, substrate: 'none' }, { substrate: cluster });
    fork = await createToken(db.sql, { id: 'fork', trust: 'untrusted', lanes: ['*'] });
    approver = await createToken(db.sql, { id: 'release-manager', trust: 'trusted', lanes: ['*'], roles: ['approver'] });
    maintainer = await createToken(db.sql, { id: 'maintainer', trust: 'trusted', lanes: ['*'] });
    const submit = async (labels: Record<string, string>) => {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token: fork,
        body: jobRequest({ lane: 'intake', promoteTo: 'verify', labels }),
      });
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    waitingId = await submit({ pr: '42' });
    hostileId = await submit({ note: hostile });
    for (const id of [waitingId, hostileId]) await settled(fork, id, ['awaiting_approval', ...finalStates]);
    // Hostile text in a reason too: the fork cancels its own job with markup as the reason.
    expect((await call(proofpod.url, 'POST', `/v1/jobs/${hostileId}/cancel`, { token: fork, body: { reason: hostile } })).status).toBe(200);
    await mkdir(screenshots, { recursive: true });
    browser = await chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  });
  afterAll(async () => {
    await browser?.close();
    cluster?.shutdown();
    // Node's fetch (undici) here sometimes leaves a socket connected to the API that never sends a
    // request (seen: 0 bytes either way, opened by undici's pool); the HTTP server's close waits for
    // it until headersTimeout (60 s). Every test has ended, so no request is in flight to cut short.
    proofpod?.server.server.closeAllConnections();
    await proofpod?.stop();
  });

  const settled = (token: string, id: string, states: string[]) =>
    until(
      `job ${id} in ${states.join('/')}`,
      async () => {
        const view = (await call(proofpod.url, 'GET', `/v1/jobs/${id}`, { token })).body;
        return states.includes(view.state) && view;
      },
      20_000,
      50,
    );

  /** A fresh browser context (its own sessionStorage), at /ui, signed in with `token` if given. */
  async function open(token?: string): Promise<Watched> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const watched: Watched = { page, problems: [], dialogs: [] };
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (401|403|404|500)/.test(m.text())) {
        watched.problems.push(m.text());
      }
    });
    page.on('pageerror', (e) => watched.problems.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      watched.dialogs.push(d.message());
      void d.dismiss();
    });
    opened.push(watched);
    await page.goto(`${proofpod.url}/ui`);
    if (token) {
      await page.getByLabel('API token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Lanes' }).waitFor();
    }
    return watched;
  }

  const shoot = (page: Page, name: string) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });

  it('serves /ui without a token, with the strict CSP, and shows nothing of the estate before sign-in', async () => {
    for (const url of ['/ui', '/ui/', '/ui/app.js', '/ui/app.css']) {
      const r = await fetch(`${proofpod.url}${url}`);
      expect(r.status, url).toBe(200);
      expect(r.headers.get('content-security-policy'), url).toBe(dashboardCsp);
      expect(r.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(r.headers.get('referrer-policy'), url).toBe('no-referrer');
    }
    expect(dashboardCsp).toContain(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect((await fetch(`${proofpod.url}/ui/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${proofpod.url}/ui/../package.json`)).status).toBe(404);
    expect((await fetch(`${proofpod.url}/ui/index.html`)).status).toBe(404);

    const { page } = await open();
    await expect(page.getByRole('heading', { level: 1, name: 'Sign in' }).isVisible()).resolves.toBe(true);
    expect(await page.getByRole('table').count()).toBe(0);
    expect(await page.getByRole('navigation').count()).toBe(0);
    await shoot(page, 'sign-in');

    await page.getByLabel('API token').fill('pp_not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toBe('the API refused this token (unknown or revoked)');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  });

  it('signs in with a token kept in sessionStorage alone, shows the lanes and provers, and signs out', async () => {
    const { page } = await open(maintainer);
    const lanes = page.getByRole('table', { name: 'lanes' });
    const intake = lanes.getByRole('row').filter({ has: page.getByRole('cell', { name: 'intake', exact: true }) });
    await intake.waitFor();
    // intake: the waiting job of the fork is counted whoever looks.
    await expect(intake.getByRole('cell').allTextContents()).resolves.toEqual(['intake', 'untrusted', '0', '0 / 4', '1', '—', 'yes']);
    expect(await lanes.getByRole('row').count()).toBeGreaterThanOrEqual(3);
    for (const lane of ['intake', 'verify', 'audit']) {
      expect(await lanes.getByRole('cell', { name: lane, exact: true }).count(), lane).toBe(1);
    }
    const provers = page.getByRole('table', { name: 'provers' });
    const coq = provers.getByRole('row').filter({ has: page.getByRole('cell', { name: 'coq', exact: true }) });
    await expect(coq.getByRole('cell').nth(1).textContent()).resolves.toBe('healthy');
    await expect(coq.getByRole('cell').nth(2).textContent()).resolves.toBe('0');
    await shoot(page, 'lanes');

    expect(await page.evaluate("sessionStorage.getItem('proofpod.token')")).toBe(maintainer);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(page.url()).not.toContain(maintainer);
    expect((await page.context().cookies()).length).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('proofpod.token')")).toBeNull();
    expect(await page.getByRole('table').count()).toBe(0);
  });

  it('goes back to sign-in on a 401 from any call', async () => {
    const { page } = await open(maintainer);
    // Both loads of the lanes page done first: the swapped token must be the next call's.
    await page.getByRole('table', { name: 'provers' }).waitFor();
    await page.getByRole('table', { name: 'lanes' }).waitFor();
    await page.evaluate("sessionStorage.setItem('proofpod.token', 'pp_revoked-meanwhile')");
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await expect(page.getByRole('status').textContent()).resolves.toMatch(/refused the token/);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  });

  it('lists jobs with the filters and renders hostile labels and reasons as text', async () => {
    const { page, dialogs } = await open(fork);
    await page.getByRole('link', { name: 'Jobs' }).click();
    const jobs = page.getByRole('table', { name: 'jobs' });
    await jobs.waitFor();
    expect(await jobs.getByRole('row').count()).toBe(3); // the header and two jobs
    const row = jobs.getByRole('row').filter({ hasText: hostileId.slice(0, 8) });
    await expect(row.getByRole('cell').nth(5).textContent()).resolves.toBe(`note=${hostile}`);
    await expect(row.getByRole('cell').nth(6).textContent()).resolves.toBe(`cancelled by fork: ${hostile}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate("document.querySelectorAll('[onerror]').length")).toBe(0);
    await shoot(page, 'jobs');

    // The API's filters: one state, then a label, then paging by nextCursor with a page of one.
    await page.getByLabel('state').selectOption('awaiting_approval');
    await page.getByRole('button', { name: 'Filter' }).click();
    await until('the filtered list', async () => (await jobs.getByRole('row').count()) === 2 && true, 10_000, 50);
    await expect(jobs.getByRole('row').nth(1).getByRole('cell').first().textContent()).resolves.toBe(waitingId.slice(0, 8));
    await page.getByLabel('state').selectOption('');
    await page.getByLabel('label (key=value)').fill(`note=${hostile}`);
    await page.getByRole('button', { name: 'Filter' }).click();
    await until(
      'the label-filtered list',
      async () =>
        (await jobs.getByRole('row').count()) === 2 && (await jobs.getByRole('row').nth(1).textContent())!.includes(hostileId.slice(0, 8)),
      10_000,
      50,
    );
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    expect(dialogs).toEqual([]);
  });

  it('pages the job list by nextCursor', async () => {
    const { page } = await open(fork);
    // 25 a page: 24 more jobs make two pages.
    for (let i = 0; i < 24; i++) {
      const r = await call(proofpod.url, 'POST', '/v1/jobs', {
        token: fork,
        body: jobRequest({ lane: 'intake', labels: { batch: 'paging' } }),
      });
      expect(r.status).toBe(201);
    }
    await page.getByRole('link', { name: 'Jobs' }).click();
    const jobs = page.getByRole('table', { name: 'jobs' });
    await jobs.waitFor();
    expect(await jobs.getByRole('row').count()).toBe(26);
    await page.getByRole('button', { name: 'Next page' }).click();
    await until('the second page', async () => (await jobs.getByRole('row').count()) === 2, 10_000, 50);
    await expect(jobs.getByRole('row').nth(1).textContent()).resolves.toContain(waitingId.slice(0, 8));
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await until('the first page again', async () => (await jobs.getByRole('row').count()) === 26, 10_000, 50);
    // Let the fake finish them, so that nothing is in flight when the scheduler stops.
    await until(
      'the paging jobs to end',
      async () => {
        const [left] = await db.sql<
          { n: number }[]
        >`select count(*)::int as n from jobs where labels->>'batch' = 'paging' and state <> all(${finalStates})`;
        return left!.n === 0;
      },
      20_000,
      100,
    );
  });

  it('opens a job: its attempts, timeline, evidence and logs section', async () => {
    const { page } = await open(fork);
    await page.goto(`${proofpod.url}/ui#/jobs/${waitingId}`);
    await page.getByRole('heading', { level: 1, name: `Job ${waitingId}` }).waitFor();
    const attempts = page.getByRole('table', { name: 'attempts' });
    await attempts.waitFor();
    expect(await attempts.getByRole('row').count()).toBe(2);
    await expect(attempts.getByRole('row').nth(1).getByRole('cell').nth(1).textContent()).resolves.toBe('succeeded');
    const timeline = page.getByRole('table', { name: 'timeline' });
    await timeline.waitFor();
    await expect(timeline.textContent()).resolves.toContain('→ awaiting_approval');

    const evidence = page.getByRole('article', { name: 'evidence of attempt 1' });
    await evidence.waitFor();
    await expect(evidence.getByRole('heading', { name: 'Attempt 1' }).isVisible()).resolves.toBe(true);
    await expect(evidence.textContent()).resolves.toContain('fake-checker 1.0');
    const results = page.getByRole('table', { name: 'results of attempt 1' });
    await expect(results.getByRole('row').nth(1).getByRole('cell').allTextContents()).resolves.toEqual(['Main.v', 'pass', '']);
    await expect(evidence.getByText('no findings').isVisible()).resolves.toBe(true);

    // The logs route (being built alongside) answers text/plain, a 404 where there is none, or
    // another error: the section shows the text, "no logs", or the API's message, whichever it is.
    const logs = page.getByRole('article', { name: 'logs of attempt 1' });
    await until('the logs section', async () => (await logs.locator('pre, p').count()) === 1, 10_000, 50);
    const answered = await call(proofpod.url, 'GET', `/v1/jobs/${waitingId}/logs?attempt=1&container=check`, { token: fork });
    if (answered.status === 200) await expect(logs.locator('pre').textContent()).resolves.toBe(answered.body);
    else if (answered.status === 404) expect(await logs.getByText('no logs').count()).toBe(1);
    else await expect(logs.getByRole('alert').textContent()).resolves.toBe(`${answered.status}: ${answered.body.message}`);
    await shoot(page, 'job');
  });

  it("shows the API's 403 to a non-approver and approves as an approver", async () => {
    const mine = await open(fork);
    await mine.page.getByRole('link', { name: 'Approvals' }).click();
    const queue = mine.page.getByRole('table', { name: 'awaiting approval' });
    await queue.waitFor();
    expect(await queue.getByRole('row').count()).toBe(2); // the header and the waiting job: the hostile one was cancelled
    await queue.getByRole('row').nth(1).getByRole('button', { name: 'Approve' }).click();
    await expect(mine.page.getByRole('alert').textContent()).resolves.toBe('403: approving needs the approver role; fork has no roles');
    expect((await call(proofpod.url, 'GET', `/v1/jobs/${waitingId}`, { token: fork })).body.state).toBe('awaiting_approval');
    await shoot(mine.page, 'approvals-refused');

    const theirs = await open(approver);
    await theirs.page.getByRole('link', { name: 'Approvals' }).click();
    const row = theirs.page
      .getByRole('table', { name: 'awaiting approval' })
      .getByRole('row')
      .filter({ hasText: waitingId.slice(0, 8) });
    await row.waitFor();
    await shoot(theirs.page, 'approvals');
    await row.getByLabel(`note for ${waitingId}`).fill('reviewed in the dashboard');
    await row.getByRole('button', { name: 'Approve' }).click();
    await expect(theirs.page.getByRole('status').textContent()).resolves.toBe(`approved ${waitingId}: now queued in verify`);
    await theirs.page.getByText('nothing awaits approval').waitFor();
    const done = await settled(fork, waitingId, finalStates);
    expect(done).toMatchObject({ state: 'verified', lane: 'verify' });
    const events = (await call(proofpod.url, 'GET', `/v1/jobs/${waitingId}/events`, { token: fork })).body.events;
    expect(events).toContainEqual(
      expect.objectContaining({
        actor: 'release-manager',
        from: 'awaiting_approval',
        to: 'queued',
        reason: 'approved by release-manager to run in verify: reviewed in the dashboard',
      }),
    );
  });

  it('logged no CSP violation nor page error on any page, and would have caught one', async () => {
    for (const { problems } of opened) expect(problems).toEqual([]);
    // The control: an inline script injected into the page is refused by the CSP, and seen.
    const { page, problems } = await open();
    // A string run in the page: the test's own type check has no DOM.
    await page.evaluate(`{
        const script = document.createElement('script');
        script.textContent = 'document.title = "inline ran"';
        document.head.append(script);
        const styled = document.createElement('div');
        styled.setAttribute('style', 'color: red');
        document.body.append(styled);
      }`);
    await until('the CSP violation in the console', async () => problems.length >= 1, 5_000, 50);
    expect(problems.join('\n')).toMatch(/inline script violates the following Content Security Policy directive 'script-src 'self''/);
    expect(await page.title()).toBe('proofpod');
  });
});
