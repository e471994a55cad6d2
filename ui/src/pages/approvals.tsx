import { useState } from 'preact/hooks';
import { type Job, getJson, postJson } from '../api.js';
import { Pending, jobHref, labelText, messageOf, useLoad, when } from '../common.js';

/** Jobs waiting for an approver: the API itself decides who may approve (a 403 is shown as it says). */
export function ApprovalsPage() {
  const [page, reload] = useLoad(() => getJson<{ jobs: Job[] }>('/v1/jobs?state=awaiting_approval&limit=100'), 'approvals');
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);

  const act = async (job: Job, action: 'approve' | 'cancel', note: string) => {
    setOutcome(null);
    try {
      const body = note.trim() ? (action === 'approve' ? { note: note.trim() } : { reason: note.trim() }) : undefined;
      const after = await postJson<Job>(`/v1/jobs/${encodeURIComponent(job.id)}/${action}`, body);
      setOutcome({ ok: true, text: `${action === 'approve' ? 'approved' : 'cancelled'} ${job.id}: now ${after.state} in ${after.lane}` });
      reload();
    } catch (error) {
      setOutcome({ ok: false, text: messageOf(error) });
    }
  };

  return (
    <section>
      <h1>Approvals</h1>
      {outcome && <p role={outcome.ok ? 'status' : 'alert'}>{outcome.text}</p>}
      <Pending state={page} />
      {page.status === 'ready' &&
        (page.value.jobs.length === 0 ? (
          <p class="muted">nothing awaits approval</p>
        ) : (
          <table aria-label="awaiting approval">
            <thead>
              <tr>
                <th>job</th>
                <th>submitter</th>
                <th>lanes</th>
                <th>labels</th>
                <th>reason</th>
                <th>submitted</th>
                <th>note</th>
                <th>action</th>
              </tr>
            </thead>
            <tbody>
              {page.value.jobs.map((job) => (
                <ApprovalRow key={job.id} job={job} act={act} />
              ))}
            </tbody>
          </table>
        ))}
    </section>
  );
}

function ApprovalRow({ job, act }: { job: Job; act: (job: Job, action: 'approve' | 'cancel', note: string) => Promise<void> }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const run = (action: 'approve' | 'cancel') => async () => {
    setBusy(true);
    await act(job, action, note);
    setBusy(false);
  };
  return (
    <tr>
      <td>
        <a href={jobHref(job.id)}>{job.id.slice(0, 8)}</a>
      </td>
      <td>{job.submitter}</td>
      <td>{`${job.lane} → ${job.promoteTo ?? '?'}`}</td>
      <td>{labelText(job.labels)}</td>
      <td>{job.stateReason ?? ''}</td>
      <td>{when(job.createdAt)}</td>
      <td>
        <input aria-label={`note for ${job.id}`} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </td>
      <td>
        <button type="button" disabled={busy} onClick={run('approve')}>
          Approve
        </button>{' '}
        <button type="button" disabled={busy} onClick={run('cancel')}>
          Cancel
        </button>
      </td>
    </tr>
  );
}
