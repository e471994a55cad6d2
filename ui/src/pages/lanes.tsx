import { type Lane, type Prover, getJson } from '../api.js';
import { Pending, seconds, useLoad, when } from '../common.js';

export function LanesPage() {
  const [lanes] = useLoad(() => getJson<{ lanes: Lane[] }>('/v1/lanes'), 'lanes');
  const [provers] = useLoad(() => getJson<{ provers: Prover[] }>('/v1/provers'), 'provers');
  return (
    <section>
      <h1>Lanes</h1>
      <Pending state={lanes} />
      {lanes.status === 'ready' && (
        <table aria-label="lanes">
          <thead>
            <tr>
              <th>lane</th>
              <th>trust</th>
              <th>queued</th>
              <th>running / cap</th>
              <th>awaiting approval</th>
              <th>oldest wait</th>
              <th>usable by you</th>
            </tr>
          </thead>
          <tbody>
            {lanes.value.lanes.map((lane) => (
              <tr key={lane.name}>
                <td>{lane.name}</td>
                <td>{lane.trust}</td>
                <td>{lane.queued}</td>
                <td>
                  {lane.running} / {lane.concurrency}
                </td>
                <td>{lane.awaitingApproval}</td>
                <td>{seconds(lane.oldestWaitingSeconds)}</td>
                <td>{lane.usable ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Provers</h2>
      <Pending state={provers} />
      {provers.status === 'ready' && (
        <table aria-label="provers">
          <thead>
            <tr>
              <th>prover</th>
              <th>health</th>
              <th>consecutive failures</th>
              <th>last failure</th>
              <th>image</th>
            </tr>
          </thead>
          <tbody>
            {provers.value.provers.map((prover) => (
              <tr key={prover.name}>
                <td>{prover.name}</td>
                <td class={prover.healthy ? '' : 'unhealthy'}>{prover.healthy ? 'healthy' : 'unhealthy'}</td>
                <td>{prover.consecutiveFailures}</td>
                <td>{prover.lastFailure ? `${prover.lastFailure} (${when(prover.lastFailureAt)})` : '—'}</td>
                <td>{prover.image}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
