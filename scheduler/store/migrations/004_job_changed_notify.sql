-- Every recorded state change, of a job or of one of its attempts, is announced on the channel
-- proofpod_job_changed with the job's id, so that an API request waiting on the job answers at once
-- (GET /v1/jobs/{id}?waitSeconds=). A NOTIFY is delivered when its transaction commits, never for
-- one that rolled back, and Postgres folds repeats of one payload in a transaction into one.
create function events_notify_job_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('proofpod_job_changed', new.job_id::text);
  return null;
end $$;
create trigger events_notify_job_changed after insert on events
  for each row execute function events_notify_job_changed();
