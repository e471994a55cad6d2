-- Signed verdicts (docs/security.md, "Signed verdicts"): the public keys attestations are signed
-- with, each registered by the first replica that started with it, and one DSSE envelope per job
-- that ended verified or rejected, written in the transaction that ended it.
create table attestation_keys (
  keyid text primary key,
  algorithm text not null check (algorithm in ('ecdsa-p256-sha256', 'ed25519')),
  public_key_pem text not null,
  registered_at timestamptz not null default now()
);

create table attestations (
  job_id uuid primary key references jobs (id),
  attempt_id uuid not null references attempts (id),
  keyid text not null references attestation_keys (keyid),
  envelope jsonb not null,
  issued_at timestamptz not null
);
-- A key's validity in the key list is read from the first and last attestation it signed.
create index attestations_keyid on attestations (keyid, issued_at);

-- A signed verdict is never rewritten: a second one for a job is a primary-key error, and neither
-- table's rows change or go (so no old attestation loses its key).
create function signed_verdicts_append_only() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only (% refused)', tg_table_name, tg_op using errcode = 'insufficient_privilege';
end $$;
create trigger attestations_no_change before update or delete on attestations
  for each row execute function signed_verdicts_append_only();
create trigger attestation_keys_no_change before update or delete on attestation_keys
  for each row execute function signed_verdicts_append_only();
