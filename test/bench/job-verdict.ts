import { type JobState, isFinalJobState } from '../../scheduler/job-states.js';

/** The fields of a job view the benchmarks read. */
export interface JobSeen {
  state: JobState;
  stateReason: string;
  attempts?: { name: string }[];
}

/**
 * The job once it is final, and when that was seen, read as a client would: each GET waits on the
 * scheduler until the state moves on (docs/api.md, "Waiting for a job"), so the time includes no
 * polling interval and the scheduler measured carries no polling load.
 */
export async function jobVerdict(baseUrl: string, headers: Record<string, string>, id: string): Promise<JobSeen & { seenAt: number }> {
  let query = '';
  for (;;) {
    const response = await fetch(`${baseUrl}/v1/jobs/${id}${query}`, { headers });
    if (response.status !== 200) throw new Error(`GET /v1/jobs/${id}${query} answered ${response.status}: ${await response.text()}`);
    const job = (await response.json()) as JobSeen;
    if (isFinalJobState(job.state)) return { ...job, seenAt: Date.now() };
    query = `?waitSeconds=30&whileState=${job.state}`;
  }
}
