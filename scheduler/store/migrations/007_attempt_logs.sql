-- The logs of each container of an attempt (docs/api.md, "Logs"), kept when the scheduler sees the
-- pod end, so that they outlive the pod: the first `content` bytes of each, their SHA-256, and
-- whether there was more.
create table attempt_logs (
  attempt_id uuid not null references attempts (id) on delete cascade,
  container text not null check (container in ('fetch', 'build', 'check', 'reporter')),
  content bytea not null,
  truncated boolean not null,
  digest text not null,
  kept_at timestamptz not null default now(),
  primary key (attempt_id, container)
);
