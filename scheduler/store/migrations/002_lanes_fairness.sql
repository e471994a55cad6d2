-- Lanes, trust and fairness (SPEC §7): promotion after intake, concurrency groups, and the decayed
-- usage that orders submitters inside a lane.

alter table jobs
  -- The trusted lane a job moves to once it has passed its untrusted one (by approval or policy).
  add column promote_to text,
  -- Concurrency group, per submitter: a newer job supersedes the pending one, and with
  -- cancel_in_progress also the one in flight.
  add column concurrency_group text,
  add column cancel_in_progress boolean not null default false,
  add column superseded_by uuid references jobs (id);

-- Claims walk the queue submitter by submitter (a loose index scan over (lane, submitter_id)), then
-- take each one's head in priority order from the index alone (id and group included, so no heap
-- fetch for the candidates); the old (lane, priority, seq) index serves nothing else.
drop index jobs_queue;
create index jobs_queue_by_submitter on jobs (lane, submitter_id, priority desc, seq) include (id, concurrency_group)
  where state = 'queued';
-- The oldest waiting job of a lane.
create index jobs_queue_age on jobs (lane, seq) where state = 'queued';
-- A submitter's waiting jobs and jobs in flight (quotas), and a group's live jobs (supersession,
-- dispatch).
create index jobs_waiting_by_submitter on jobs (submitter_id) where state in ('queued', 'awaiting_approval');
create index jobs_in_flight_by_submitter on jobs (submitter_id) where state in ('dispatching', 'running');
create index jobs_live_groups on jobs (submitter_id, concurrency_group)
  where concurrency_group is not null and state in ('queued', 'awaiting_approval', 'dispatching', 'running');

-- Recent dispatches per submitter and lane, decayed exponentially: usage is the value at updated_at
-- and decays with the configured half-life from there, so it is never rewritten just to decay.
create table lane_usage (
  lane text not null,
  submitter_id text not null references submitters (id),
  usage double precision not null check (usage >= 0),
  updated_at timestamptz not null,
  primary key (lane, submitter_id)
);

-- Recent dispatch latency per lane (GET /v1/lanes, metrics).
create index attempts_recent on attempts (lane, created_at);
