/**
 * The dashboard's only way to the scheduler: the public REST API (docs/api.md) with the user's
 * bearer token. The token lives in sessionStorage alone — never in a URL, localStorage or a
 * cookie — so it ends with the tab and is sent only in the Authorization header.
 */

const tokenKey = 'proofpod.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(tokenKey);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(tokenKey, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(tokenKey);
}

/** An answer other than 2xx, with the API's own message (docs/api.md, "Errors"). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called on any 401: the token is gone or revoked, so the dashboard goes back to sign-in. */
let onUnauthorized: () => void = () => {};

export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

async function request(method: string, path: string, body?: unknown, token = storedToken()): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (response.status === 401) {
    onUnauthorized();
    throw new ApiError(401, await messageOf(response));
  }
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  return response;
}

async function messageOf(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not the API's JSON error body
  }
  return `${response.status} ${response.statusText}`;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request('GET', path)).json()) as T;
}

export async function postJson<T>(path: string, body?: unknown): Promise<T> {
  return (await (await request('POST', path, body)).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return (await request('GET', path)).text();
}

/** Checks a pasted token before keeping it: a 401 here is "token refused", not a sign-out. */
export async function tokenWorks(token: string): Promise<boolean> {
  const response = await fetch('/v1/lanes', { headers: { authorization: `Bearer ${token}` }, credentials: 'omit', cache: 'no-store' });
  if (response.status === 401) return false;
  if (!response.ok) throw new ApiError(response.status, await messageOf(response));
  return true;
}

// The shapes of the answers the pages read (docs/api.md); only the fields shown are named.

export interface Lane {
  name: string;
  trust: 'untrusted' | 'trusted';
  concurrency: number;
  usable: boolean;
  queued: number;
  awaitingApproval: number;
  running: number;
  oldestWaitingSeconds: number | null;
}

export interface Prover {
  name: string;
  description: string;
  image: string;
  healthy: boolean;
  consecutiveFailures: number;
  lastFailure: string | null;
  lastFailureAt: string | null;
}

export interface Attempt {
  attemptNo: number;
  state: string;
  stateReason: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  observedExitCode: number | null;
  observedImageDigest: string | null;
}

export interface Job {
  id: string;
  state: string;
  stateReason: string | null;
  submitter: string;
  source: { url: string; commit: string; subdirectory: string | null };
  prover: string;
  targets: string[];
  lane: string;
  labels: Record<string, string>;
  promoteTo: string | null;
  attemptsMade: number;
  createdAt: string;
  finishedAt: string | null;
  attempts?: Attempt[];
}

export interface JobEvent {
  attemptNo: number | null;
  at: string;
  actor: string;
  from: string | null;
  to: string;
  reason: string | null;
}

/** The reporter's upload (contract/evidence.ts); read defensively, since it is shown, never trusted here. */
export interface EvidenceBody {
  outcome?: string;
  error?: string | null;
  check?: { version?: string | null; secondVersion?: string | null; exitCode?: number | null };
  results?: { path: string; result: string; reason?: string | null }[];
  audit?: { findings?: { kind: string; name: string; target: string | null; allowed: boolean }[] };
  goals?: { name: string; statement: string; result: string; reason?: string | null }[];
}

export interface EvidenceRecord {
  attemptNo: number;
  digest: string;
  receivedAt: string;
  body: EvidenceBody;
}
