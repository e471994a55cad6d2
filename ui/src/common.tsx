import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export type Loaded<T> = { status: 'loading' } | { status: 'ready'; value: T } | { status: 'failed'; message: string };

/** Loads once per change of `key`; `reload` loads again. A 401 has already sent the user to sign-in. */
export function useLoad<T>(load: () => Promise<T>, key: string): [Loaded<T>, () => void] {
  const [state, setState] = useState<Loaded<T>>({ status: 'loading' });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ status: 'loading' });
    load().then(
      (value) => live && setState({ status: 'ready', value }),
      (error: unknown) => live && setState({ status: 'failed', message: messageOf(error) }),
    );
    return () => {
      live = false;
    };
  }, [key, round]);
  return [state, useCallback(() => setRound((r) => r + 1), [])];
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return `${error.status}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** What a load shows while it is not ready; API text is always a text node, never markup. */
export function Pending({ state }: { state: Loaded<unknown> }) {
  if (state.status === 'loading') return <p class="muted">loading…</p>;
  if (state.status === 'failed') return <p role="alert">{state.message}</p>;
  return null;
}

export function when(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function seconds(value: number | null): string {
  if (value === null) return '—';
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${Math.round(value / 3600)} h`;
}

export function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

export function jobHref(id: string): string {
  return `#/jobs/${encodeURIComponent(id)}`;
}
