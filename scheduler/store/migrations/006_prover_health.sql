-- Prover health (docs/operations.md, "Prover health"): failures of a profile's own image or
-- containers in a row; past the threshold the profile is unhealthy (unhealthy_since set) and its
-- jobs are not dispatched until a verdict of that profile, a canary's where one is configured,
-- shows it works again.
create table prover_health (
  prover text primary key,
  -- The image the failures were of: a profile whose configured image is another one now is not
  -- held back by them (the operator fixed the image), and its next failure starts a new count.
  image text not null,
  consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
  unhealthy_since timestamptz,
  last_failure text,
  last_failure_at timestamptz,
  -- When a verdict (a checker ran on its image) last reset the failures or made it healthy again.
  restored_at timestamptz,
  -- When the reaper last sent a canary (or a probe job) to see whether it works again.
  probed_at timestamptz
);

-- A job the scheduler submitted itself to see whether an unhealthy profile works again: it is
-- dispatched even while its profile is unhealthy.
alter table jobs add column canary boolean not null default false;
create index jobs_canary on jobs (prover) where canary;
