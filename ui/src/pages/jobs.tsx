import { useState } from 'preact/hooks';
import { type Job, getJson } from '../api.js';
import { Pending, jobHref, labelText, useLoad, when } from '../common.js';

const states = ['', 'queued', 'awaiting_approval', 'dispatching', 'running', 'verified', 'rejected', 'error', 'timed_out', 'cancelled'];

interface Filters {
  state: string;
  lane: string;
  prover: string;
  label: string;
}

const noFilters: Filters = { state: '', lane: '', prover: '', label: '' };

export function jobsQuery(filters: Filters, cursor: string | null): string {
  const query = new URLSearchParams();
  if (filters.state) query.set('state', filters.state);
  if (filters.lane.trim()) query.set('lane', filters.lane.trim());
  if (filters.prover.trim()) query.set('prover', filters.prover.trim());
  if (filters.label.trim()) query.set('label', filters.label.trim());
  query.set('limit', '25');
  if (cursor) query.set('cursor', cursor);
  return `/v1/jobs?${query}`;
}

export function JobsPage() {
  const [draft, setDraft] = useState<Filters>(noFilters);
  const [filters, setFilters] = useState<Filters>(noFilters);
  // The cursors of the pages before this one, so that "previous" goes back without a second API.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const path = jobsQuery(filters, cursor);
  const [page] = useLoad(() => getJson<{ jobs: Job[]; nextCursor: string | null }>(path), path);

  const field = (name: keyof Filters) => (e: Event) => setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).value });
  const apply = (e: Event) => {
    e.preventDefault();
    setFilters(draft);
    setCursors([null]);
  };

  return (
    <section>
      <h1>Jobs</h1>
      <form class="filters" aria-label="filters" onSubmit={apply}>
        <label>
          state
          <select value={draft.state} onChange={field('state')}>
            {states.map((s) => (
              <option key={s} value={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label>
          lane
          <input value={draft.lane} onInput={field('lane')} />
        </label>
        <label>
          prover
          <input value={draft.prover} onInput={field('prover')} />
        </label>
        <label>
          label (key=value)
          <input value={draft.label} onInput={field('label')} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <Pending state={page} />
      {page.status === 'ready' && (
        <>
          <JobTable jobs={page.value.jobs} />
          <p>
            <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous page
            </button>{' '}
            <button
              type="button"
              disabled={page.value.nextCursor === null}
              onClick={() => page.value.nextCursor && setCursors([...cursors, page.value.nextCursor])}
            >
              Next page
            </button>
          </p>
        </>
      )}
    </section>
  );
}

export function JobTable({ jobs }: { jobs: Job[] }) {
  if (jobs.length === 0) return <p class="muted">no jobs</p>;
  return (
    <table aria-label="jobs">
      <thead>
        <tr>
          <th>job</th>
          <th>state</th>
          <th>lane</th>
          <th>prover</th>
          <th>submitter</th>
          <th>labels</th>
          <th>reason</th>
          <th>submitted</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <tr key={job.id}>
            <td>
              <a href={jobHref(job.id)}>{job.id.slice(0, 8)}</a>
            </td>
            <td class={`state-${job.state}`}>{job.state}</td>
            <td>{job.promoteTo ? `${job.lane} → ${job.promoteTo}` : job.lane}</td>
            <td>{job.prover}</td>
            <td>{job.submitter}</td>
            <td>{labelText(job.labels)}</td>
            <td>{job.stateReason ?? ''}</td>
            <td>{when(job.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
