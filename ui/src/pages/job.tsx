import { ApiError, type EvidenceRecord, type Job, type JobEvent, getJson, getText } from '../api.js';
import { Pending, labelText, useLoad, when } from '../common.js';

export function JobPage({ id }: { id: string }) {
  const base = `/v1/jobs/${encodeURIComponent(id)}`;
  const [job] = useLoad(() => getJson<Job>(base), `job ${id}`);
  const [events] = useLoad(() => getJson<{ events: JobEvent[] }>(`${base}/events`), `events ${id}`);
  const [evidence] = useLoad(() => getJson<{ evidence: EvidenceRecord[] }>(`${base}/evidence`), `evidence ${id}`);
  return (
    <section>
      <h1>Job {id}</h1>
      <Pending state={job} />
      {job.status === 'ready' && <Summary job={job.value} />}
      <h2>Timeline</h2>
      <Pending state={events} />
      {events.status === 'ready' && <Timeline events={events.value.events} />}
      <h2>Evidence</h2>
      <Pending state={evidence} />
      {evidence.status === 'ready' &&
        (evidence.value.evidence.length === 0 ? (
          <p class="muted">no evidence uploaded</p>
        ) : (
          evidence.value.evidence.map((record) => <Evidence key={record.attemptNo} record={record} />)
        ))}
      <h2>Logs</h2>
      {job.status === 'ready' &&
        ((job.value.attempts ?? []).length === 0 ? (
          <p class="muted">no attempts</p>
        ) : (
          (job.value.attempts ?? []).map((a) => <Logs key={a.attemptNo} base={base} attemptNo={a.attemptNo} />)
        ))}
    </section>
  );
}

function Summary({ job }: { job: Job }) {
  return (
    <>
      <dl aria-label="job">
        <dt>state</dt>
        <dd class={`state-${job.state}`}>{job.state}</dd>
        <dt>reason</dt>
        <dd>{job.stateReason ?? '—'}</dd>
        <dt>lane</dt>
        <dd>{job.promoteTo ? `${job.lane} (promote to ${job.promoteTo})` : job.lane}</dd>
        <dt>prover</dt>
        <dd>{job.prover}</dd>
        <dt>submitter</dt>
        <dd>{job.submitter}</dd>
        <dt>source</dt>
        <dd>{`${job.source.url} @ ${job.source.commit}${job.source.subdirectory ? ` (${job.source.subdirectory})` : ''}`}</dd>
        <dt>targets</dt>
        <dd>{job.targets.join(', ') || '—'}</dd>
        <dt>labels</dt>
        <dd>{labelText(job.labels) || '—'}</dd>
        <dt>submitted</dt>
        <dd>{when(job.createdAt)}</dd>
        <dt>finished</dt>
        <dd>{when(job.finishedAt)}</dd>
      </dl>
      <h2>Attempts</h2>
      <table aria-label="attempts">
        <thead>
          <tr>
            <th>attempt</th>
            <th>state</th>
            <th>reason</th>
            <th>started</th>
            <th>finished</th>
            <th>check exit code</th>
            <th>image digest</th>
          </tr>
        </thead>
        <tbody>
          {(job.attempts ?? []).map((a) => (
            <tr key={a.attemptNo}>
              <td>{a.attemptNo}</td>
              <td>{a.state}</td>
              <td>{a.stateReason ?? ''}</td>
              <td>{when(a.startedAt)}</td>
              <td>{when(a.finishedAt)}</td>
              <td>{a.observedExitCode ?? '—'}</td>
              <td>{a.observedImageDigest ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Timeline({ events }: { events: JobEvent[] }) {
  return (
    <table aria-label="timeline">
      <thead>
        <tr>
          <th>at</th>
          <th>attempt</th>
          <th>actor</th>
          <th>change</th>
          <th>reason</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e, i) => (
          <tr key={i}>
            <td>{when(e.at)}</td>
            <td>{e.attemptNo ?? 'job'}</td>
            <td>{e.actor}</td>
            <td>{`${e.from ?? '∅'} → ${e.to}`}</td>
            <td>{e.reason ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Evidence({ record }: { record: EvidenceRecord }) {
  const body = record.body ?? {};
  const findings = body.audit?.findings ?? [];
  const goals = body.goals ?? [];
  return (
    <article aria-label={`evidence of attempt ${record.attemptNo}`}>
      <h3>Attempt {record.attemptNo}</h3>
      <dl>
        <dt>outcome</dt>
        <dd>{body.outcome ?? '—'}</dd>
        {body.error && (
          <>
            <dt>error</dt>
            <dd>{body.error}</dd>
          </>
        )}
        <dt>checker</dt>
        <dd>{body.check?.version ?? '—'}</dd>
        {body.check?.secondVersion && (
          <>
            <dt>second checker</dt>
            <dd>{body.check.secondVersion}</dd>
          </>
        )}
        <dt>received</dt>
        <dd>{`${when(record.receivedAt)} (${record.digest})`}</dd>
      </dl>
      <table aria-label={`results of attempt ${record.attemptNo}`}>
        <thead>
          <tr>
            <th>target</th>
            <th>result</th>
            <th>reason</th>
          </tr>
        </thead>
        <tbody>
          {(body.results ?? []).map((r) => (
            <tr key={r.path}>
              <td>{r.path}</td>
              <td>{r.result}</td>
              <td>{r.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h4>Audit findings</h4>
      {findings.length === 0 ? (
        <p class="muted">no findings</p>
      ) : (
        <table aria-label={`findings of attempt ${record.attemptNo}`}>
          <thead>
            <tr>
              <th>kind</th>
              <th>name</th>
              <th>target</th>
              <th>allowed</th>
            </tr>
          </thead>
          <tbody>
            {findings.map((f) => (
              <tr key={`${f.kind} ${f.name} ${f.target}`}>
                <td>{f.kind}</td>
                <td>{f.name}</td>
                <td>{f.target ?? '—'}</td>
                <td>{f.allowed ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {goals.length > 0 && (
        <>
          <h4>Goals</h4>
          <table aria-label={`goals of attempt ${record.attemptNo}`}>
            <thead>
              <tr>
                <th>name</th>
                <th>statement</th>
                <th>result</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {goals.map((g) => (
                <tr key={g.name}>
                  <td>{g.name}</td>
                  <td>{g.statement}</td>
                  <td>{g.result}</td>
                  <td>{g.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </article>
  );
}

/** The check container's log of one attempt, as text/plain; a 404 (no log kept, or no logs route) is "no logs". */
function Logs({ base, attemptNo }: { base: string; attemptNo: number }) {
  const [log] = useLoad(async () => {
    try {
      return await getText(`${base}/logs?attempt=${attemptNo}&container=check`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }, `logs ${base} ${attemptNo}`);
  return (
    <article aria-label={`logs of attempt ${attemptNo}`}>
      <h3>Attempt {attemptNo}: check</h3>
      <Pending state={log} />
      {log.status === 'ready' && (log.value === null ? <p class="muted">no logs</p> : <pre>{log.value}</pre>)}
    </article>
  );
}
