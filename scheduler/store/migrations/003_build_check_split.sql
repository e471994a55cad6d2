-- The build/check split: an attempt pod runs an untrusted build container and a trusted check
-- container. The scheduler records what it observed of each (the old observed_* columns are the
-- check container's), and the prover profile it dispatched, which the evidence must repeat.

-- Goals (statement binding): theorems a job names with the statements they must have.
alter table jobs add column goals jsonb not null default '[]';

alter table attempts
  -- Null when the profile has no build step.
  add column observed_build_exit_code integer,
  add column observed_build_image_digest text,
  -- The prover profile as dispatched (JSON) and the lane's allowed axioms, set when the attempt
  -- starts: the evidence must repeat both.
  add column profile jsonb,
  add column allowed_axioms text[];
