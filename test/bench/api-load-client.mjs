// The load of the API benchmark (test/bench/api-load.ts), in a process of its own so that the
// client's CPU is not the scheduler's: autocannon against one route for a fixed time. Reads its
// settings as JSON from argv[2], prints a JSON summary on stdout.
import autocannon from 'autocannon';

const settings = JSON.parse(process.argv[2]);
const headers = { authorization: `Bearer ${settings.token}`, 'content-type': 'application/json' };
const ids = settings.ids ?? [];
let next = 0;
const result = await autocannon({
  url: settings.url,
  connections: settings.connections,
  duration: settings.durationSeconds,
  requests: [
    settings.kind === 'submit'
      ? { method: 'POST', path: '/v1/jobs', headers, body: JSON.stringify(settings.body) }
      : {
          method: 'GET',
          headers,
          // Each request reads another job, in turn.
          setupRequest: (request) => ({ ...request, path: `/v1/jobs/${ids[next++ % ids.length]}` }),
        },
  ],
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    latencyMaxMs: result.latency.max,
    status2xx: result['2xx'],
    status4xx: result['4xx'],
    status5xx: result['5xx'],
    errors: result.errors,
    timeouts: result.timeouts,
  })}\n`,
);
