-- Submitters and their tokens are managed over the API by admins (docs/api.md, "Submitters and
-- tokens"), and every change is in an append-only audit log.

-- Quotas set over the API; null: the config's (quotas.submitters, then quotas.maxQueued/maxRunning).
alter table submitters
  add column max_queued integer check (max_queued > 0),
  add column max_running integer check (max_running > 0);

-- The name the API gives a token: its secret is shown once, and only the secret's hash is kept.
alter table api_tokens add column id uuid not null default gen_random_uuid() unique;

create table audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  -- The submitter whose token made the change.
  actor text not null,
  action text not null,
  -- What was changed: a submitter id or a token id.
  subject text not null,
  -- What changed, never a secret.
  detail jsonb not null default '{}'
);

create function audit_log_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only (% refused)', tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger audit_log_no_update before update or delete on audit_log
  for each row execute function audit_log_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
  for each statement execute function audit_log_append_only();
