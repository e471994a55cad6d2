-- proofpod's initial schema: jobs, attempts, claims, evidence, submitters and the event log.

create table submitters (
  id text primary key check (id ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'),
  trust text not null check (trust in ('untrusted', 'trusted')),
  -- '*' stands for every configured lane.
  lanes text[] not null,
  roles text[] not null default '{}',
  created_at timestamptz not null default now()
);

-- Tokens are 256 random bits, so a plain SHA-256 is a sufficient one-way store; no slow KDF needed.
create table api_tokens (
  token_hash bytea primary key,
  submitter_id text not null references submitters (id),
  label text not null default '',
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create index api_tokens_submitter on api_tokens (submitter_id);

create table jobs (
  id uuid primary key default gen_random_uuid(),
  -- Stable order for queues and cursors; uuids and timestamps do not give one.
  seq bigint generated always as identity unique,
  submitter_id text not null references submitters (id),
  source_url text not null,
  commit_sha text not null check (commit_sha ~ '^[0-9a-f]{40}$'),
  subdirectory text,
  prover text not null,
  targets text[] not null,
  lane text not null,
  priority integer not null default 0,
  labels jsonb not null default '{}',
  idempotency_key text,
  request_hash bytea not null,
  state text not null check (state in ('queued', 'awaiting_approval', 'dispatching', 'running',
                                       'verified', 'rejected', 'error', 'timed_out', 'cancelled')),
  state_reason text not null default '',
  state_actor text not null,
  attempts_made integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  unique (submitter_id, idempotency_key)
);
create index jobs_queue on jobs (lane, priority desc, seq) where state = 'queued';
create index jobs_by_state on jobs (state, seq);
create index jobs_by_submitter on jobs (submitter_id, seq);
create index jobs_labels on jobs using gin (labels jsonb_path_ops);

create table attempts (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references jobs (id),
  attempt_no integer not null check (attempt_no >= 1),
  -- Deterministic substrate object name (a DNS label of 37 characters), so a repeated create is
  -- recognised as a duplicate.
  name text generated always as ('pp-' || replace(job_id::text, '-', '') || '-' || attempt_no) stored unique,
  lane text not null,
  state text not null check (state in ('dispatching', 'running', 'succeeded', 'failed', 'cancelled')),
  state_reason text not null default '',
  state_actor text not null,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  deadline_at timestamptz not null,
  -- What the scheduler saw itself when the substrate reported the attempt finished.
  observed_at timestamptz,
  observed_exit_code integer,
  observed_image_digest text,
  finished_at timestamptz,
  unique (job_id, attempt_no)
);
create index attempts_live on attempts (lane) where state in ('dispatching', 'running');

-- One row per in-flight attempt: the lease. Kept apart from attempts so that heartbeats update a
-- narrow, small table, and deleted on release so that expiry scans stay cheap.
create table claims (
  attempt_id uuid primary key references attempts (id) on delete cascade,
  holder text not null,
  -- Fencing number: bumped on every takeover; every holder write names the epoch it holds.
  epoch bigint not null check (epoch >= 1),
  expires_at timestamptz not null,
  claimed_at timestamptz not null default now()
);
create index claims_expiry on claims (expires_at);
create index claims_holder on claims (holder);

create table upload_credentials (
  token_hash bytea primary key,
  attempt_id uuid not null references attempts (id),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz
);
create index upload_credentials_attempt on upload_credentials (attempt_id);

create table evidence (
  attempt_id uuid primary key references attempts (id),
  job_id uuid not null references jobs (id),
  body jsonb not null,
  digest text not null,
  received_at timestamptz not null default now()
);
create index evidence_job on evidence (job_id);

-- Append-only log of every job and attempt state change, written by triggers so that no code path
-- can change a state without leaving a record.
create table events (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  attempt_no integer,
  at timestamptz not null default clock_timestamp(),
  actor text not null,
  from_state text,
  to_state text not null,
  reason text not null
);
create index events_job on events (job_id, id);

create function events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'events is append-only (% refused)', tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger events_no_update before update or delete on events
  for each row execute function events_append_only();
create trigger events_no_truncate before truncate on events
  for each statement execute function events_append_only();

create function log_job_state() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' or new.state is distinct from old.state then
    insert into events (job_id, attempt_no, actor, from_state, to_state, reason)
    values (new.id, null, new.state_actor,
            case when tg_op = 'UPDATE' then old.state end, new.state, new.state_reason);
  end if;
  return null;
end $$;
create trigger jobs_log_state after insert or update of state on jobs
  for each row execute function log_job_state();

create function log_attempt_state() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' or new.state is distinct from old.state then
    insert into events (job_id, attempt_no, actor, from_state, to_state, reason)
    values (new.job_id, new.attempt_no, new.state_actor,
            case when tg_op = 'UPDATE' then old.state end, new.state, new.state_reason);
  end if;
  return null;
end $$;
create trigger attempts_log_state after insert or update of state on attempts
  for each row execute function log_attempt_state();

-- A final state is final. Fencing in the application should make this unreachable; the trigger
-- turns a fencing bug into a loud error instead of a silently overwritten verdict.
create function refuse_leaving_final_state() returns trigger language plpgsql as $$
begin
  if new.state is distinct from old.state then
    raise exception '% % is final in state %, refusing change to %', tg_table_name, old.id, old.state, new.state
      using errcode = 'check_violation';
  end if;
  return new;
end $$;
create trigger jobs_final_state before update of state on jobs
  for each row when (old.state in ('verified', 'rejected', 'error', 'timed_out', 'cancelled'))
  execute function refuse_leaving_final_state();
create trigger attempts_final_state before update of state on attempts
  for each row when (old.state in ('succeeded', 'failed', 'cancelled'))
  execute function refuse_leaving_final_state();
