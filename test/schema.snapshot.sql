api_tokens.token_hash bytea not null
api_tokens.submitter_id text not null
api_tokens.label text not null default ''::text
api_tokens.created_at timestamp with time zone not null default now()
api_tokens.revoked_at timestamp with time zone
api_tokens.id uuid not null default gen_random_uuid()
attempt_logs.attempt_id uuid not null
attempt_logs.container text not null
attempt_logs.content bytea not null
attempt_logs.truncated boolean not null
attempt_logs.digest text not null
attempt_logs.kept_at timestamp with time zone not null default now()
attempts.id uuid not null default gen_random_uuid()
attempts.job_id uuid not null
attempts.attempt_no integer not null
attempts.name text generated ((('pp-'::text || replace((job_id)::text, '-'::text, ''::text)) || '-'::text) || attempt_no)
attempts.lane text not null
attempts.state text not null
attempts.state_reason text not null default ''::text
attempts.state_actor text not null
attempts.created_at timestamp with time zone not null default now()
attempts.started_at timestamp with time zone
attempts.deadline_at timestamp with time zone not null
attempts.observed_at timestamp with time zone
attempts.observed_exit_code integer
attempts.observed_image_digest text
attempts.finished_at timestamp with time zone
attempts.observed_build_exit_code integer
attempts.observed_build_image_digest text
attempts.profile jsonb
attempts.allowed_axioms ARRAY
attestation_keys.keyid text not null
attestation_keys.algorithm text not null
attestation_keys.public_key_pem text not null
attestation_keys.registered_at timestamp with time zone not null default now()
attestations.job_id uuid not null
attestations.attempt_id uuid not null
attestations.keyid text not null
attestations.envelope jsonb not null
attestations.issued_at timestamp with time zone not null
audit_log.id bigint not null
audit_log.at timestamp with time zone not null default clock_timestamp()
audit_log.actor text not null
audit_log.action text not null
audit_log.subject text not null
audit_log.detail jsonb not null default '{}'::jsonb
claims.attempt_id uuid not null
claims.holder text not null
claims.epoch bigint not null
claims.expires_at timestamp with time zone not null
claims.claimed_at timestamp with time zone not null default now()
events.id bigint not null
events.job_id uuid not null
events.attempt_no integer
events.at timestamp with time zone not null default clock_timestamp()
events.actor text not null
events.from_state text
events.to_state text not null
events.reason text not null
evidence.attempt_id uuid not null
evidence.job_id uuid not null
evidence.body jsonb not null
evidence.digest text not null
evidence.received_at timestamp with time zone not null default now()
jobs.id uuid not null default gen_random_uuid()
jobs.seq bigint not null
jobs.submitter_id text not null
jobs.source_url text not null
jobs.commit_sha text not null
jobs.subdirectory text
jobs.prover text not null
jobs.targets ARRAY not null
jobs.lane text not null
jobs.priority integer not null default 0
jobs.labels jsonb not null default '{}'::jsonb
jobs.idempotency_key text
jobs.request_hash bytea not null
jobs.state text not null
jobs.state_reason text not null default ''::text
jobs.state_actor text not null
jobs.attempts_made integer not null default 0
jobs.created_at timestamp with time zone not null default now()
jobs.updated_at timestamp with time zone not null default now()
jobs.finished_at timestamp with time zone
jobs.promote_to text
jobs.concurrency_group text
jobs.cancel_in_progress boolean not null default false
jobs.superseded_by uuid
jobs.goals jsonb not null default '[]'::jsonb
jobs.canary boolean not null default false
lane_usage.lane text not null
lane_usage.submitter_id text not null
lane_usage.usage double precision not null
lane_usage.updated_at timestamp with time zone not null
prover_health.prover text not null
prover_health.image text not null
prover_health.consecutive_failures integer not null default 0
prover_health.unhealthy_since timestamp with time zone
prover_health.last_failure text
prover_health.last_failure_at timestamp with time zone
prover_health.restored_at timestamp with time zone
prover_health.probed_at timestamp with time zone
schema_migrations.version integer not null
schema_migrations.name text not null
schema_migrations.applied_at timestamp with time zone not null default now()
submitters.id text not null
submitters.trust text not null
submitters.lanes ARRAY not null
submitters.roles ARRAY not null default '{}'::text[]
submitters.created_at timestamp with time zone not null default now()
submitters.max_queued integer
submitters.max_running integer
upload_credentials.token_hash bytea not null
upload_credentials.attempt_id uuid not null
upload_credentials.created_at timestamp with time zone not null default now()
upload_credentials.expires_at timestamp with time zone not null
upload_credentials.used_at timestamp with time zone
upload_credentials.revoked_at timestamp with time zone

api_tokens api_tokens_created_at_not_null: NOT NULL created_at
api_tokens api_tokens_id_key: UNIQUE (id)
api_tokens api_tokens_id_not_null: NOT NULL id
api_tokens api_tokens_label_not_null: NOT NULL label
api_tokens api_tokens_pkey: PRIMARY KEY (token_hash)
api_tokens api_tokens_submitter_id_fkey: FOREIGN KEY (submitter_id) REFERENCES submitters(id)
api_tokens api_tokens_submitter_id_not_null: NOT NULL submitter_id
api_tokens api_tokens_token_hash_not_null: NOT NULL token_hash
attempt_logs attempt_logs_attempt_id_fkey: FOREIGN KEY (attempt_id) REFERENCES attempts(id) ON DELETE CASCADE
attempt_logs attempt_logs_attempt_id_not_null: NOT NULL attempt_id
attempt_logs attempt_logs_container_check: CHECK ((container = ANY (ARRAY['fetch'::text, 'build'::text, 'check'::text, 'reporter'::text])))
attempt_logs attempt_logs_container_not_null: NOT NULL container
attempt_logs attempt_logs_content_not_null: NOT NULL content
attempt_logs attempt_logs_digest_not_null: NOT NULL digest
attempt_logs attempt_logs_kept_at_not_null: NOT NULL kept_at
attempt_logs attempt_logs_pkey: PRIMARY KEY (attempt_id, container)
attempt_logs attempt_logs_truncated_not_null: NOT NULL truncated
attempts attempts_attempt_no_check: CHECK ((attempt_no >= 1))
attempts attempts_attempt_no_not_null: NOT NULL attempt_no
attempts attempts_created_at_not_null: NOT NULL created_at
attempts attempts_deadline_at_not_null: NOT NULL deadline_at
attempts attempts_id_not_null: NOT NULL id
attempts attempts_job_id_attempt_no_key: UNIQUE (job_id, attempt_no)
attempts attempts_job_id_fkey: FOREIGN KEY (job_id) REFERENCES jobs(id)
attempts attempts_job_id_not_null: NOT NULL job_id
attempts attempts_lane_not_null: NOT NULL lane
attempts attempts_name_key: UNIQUE (name)
attempts attempts_pkey: PRIMARY KEY (id)
attempts attempts_state_actor_not_null: NOT NULL state_actor
attempts attempts_state_check: CHECK ((state = ANY (ARRAY['dispatching'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text])))
attempts attempts_state_not_null: NOT NULL state
attempts attempts_state_reason_not_null: NOT NULL state_reason
attestation_keys attestation_keys_algorithm_check: CHECK ((algorithm = ANY (ARRAY['ecdsa-p256-sha256'::text, 'ed25519'::text])))
attestation_keys attestation_keys_algorithm_not_null: NOT NULL algorithm
attestation_keys attestation_keys_keyid_not_null: NOT NULL keyid
attestation_keys attestation_keys_pkey: PRIMARY KEY (keyid)
attestation_keys attestation_keys_public_key_pem_not_null: NOT NULL public_key_pem
attestation_keys attestation_keys_registered_at_not_null: NOT NULL registered_at
attestations attestations_attempt_id_fkey: FOREIGN KEY (attempt_id) REFERENCES attempts(id)
attestations attestations_attempt_id_not_null: NOT NULL attempt_id
attestations attestations_envelope_not_null: NOT NULL envelope
attestations attestations_issued_at_not_null: NOT NULL issued_at
attestations attestations_job_id_fkey: FOREIGN KEY (job_id) REFERENCES jobs(id)
attestations attestations_job_id_not_null: NOT NULL job_id
attestations attestations_keyid_fkey: FOREIGN KEY (keyid) REFERENCES attestation_keys(keyid)
attestations attestations_keyid_not_null: NOT NULL keyid
attestations attestations_pkey: PRIMARY KEY (job_id)
audit_log audit_log_action_not_null: NOT NULL action
audit_log audit_log_actor_not_null: NOT NULL actor
audit_log audit_log_at_not_null: NOT NULL at
audit_log audit_log_detail_not_null: NOT NULL detail
audit_log audit_log_id_not_null: NOT NULL id
audit_log audit_log_pkey: PRIMARY KEY (id)
audit_log audit_log_subject_not_null: NOT NULL subject
claims claims_attempt_id_fkey: FOREIGN KEY (attempt_id) REFERENCES attempts(id) ON DELETE CASCADE
claims claims_attempt_id_not_null: NOT NULL attempt_id
claims claims_claimed_at_not_null: NOT NULL claimed_at
claims claims_epoch_check: CHECK ((epoch >= 1))
claims claims_epoch_not_null: NOT NULL epoch
claims claims_expires_at_not_null: NOT NULL expires_at
claims claims_holder_not_null: NOT NULL holder
claims claims_pkey: PRIMARY KEY (attempt_id)
events events_actor_not_null: NOT NULL actor
events events_at_not_null: NOT NULL at
events events_id_not_null: NOT NULL id
events events_job_id_not_null: NOT NULL job_id
events events_pkey: PRIMARY KEY (id)
events events_reason_not_null: NOT NULL reason
events events_to_state_not_null: NOT NULL to_state
evidence evidence_attempt_id_fkey: FOREIGN KEY (attempt_id) REFERENCES attempts(id)
evidence evidence_attempt_id_not_null: NOT NULL attempt_id
evidence evidence_body_not_null: NOT NULL body
evidence evidence_digest_not_null: NOT NULL digest
evidence evidence_job_id_fkey: FOREIGN KEY (job_id) REFERENCES jobs(id)
evidence evidence_job_id_not_null: NOT NULL job_id
evidence evidence_pkey: PRIMARY KEY (attempt_id)
evidence evidence_received_at_not_null: NOT NULL received_at
jobs jobs_attempts_made_not_null: NOT NULL attempts_made
jobs jobs_canary_not_null: NOT NULL canary
jobs jobs_cancel_in_progress_not_null: NOT NULL cancel_in_progress
jobs jobs_commit_sha_check: CHECK ((commit_sha ~ '^[0-9a-f]{40}$'::text))
jobs jobs_commit_sha_not_null: NOT NULL commit_sha
jobs jobs_created_at_not_null: NOT NULL created_at
jobs jobs_goals_not_null: NOT NULL goals
jobs jobs_id_not_null: NOT NULL id
jobs jobs_labels_not_null: NOT NULL labels
jobs jobs_lane_not_null: NOT NULL lane
jobs jobs_pkey: PRIMARY KEY (id)
jobs jobs_priority_not_null: NOT NULL priority
jobs jobs_prover_not_null: NOT NULL prover
jobs jobs_request_hash_not_null: NOT NULL request_hash
jobs jobs_seq_key: UNIQUE (seq)
jobs jobs_seq_not_null: NOT NULL seq
jobs jobs_source_url_not_null: NOT NULL source_url
jobs jobs_state_actor_not_null: NOT NULL state_actor
jobs jobs_state_check: CHECK ((state = ANY (ARRAY['queued'::text, 'awaiting_approval'::text, 'dispatching'::text, 'running'::text, 'verified'::text, 'rejected'::text, 'error'::text, 'timed_out'::text, 'cancelled'::text])))
jobs jobs_state_not_null: NOT NULL state
jobs jobs_state_reason_not_null: NOT NULL state_reason
jobs jobs_submitter_id_fkey: FOREIGN KEY (submitter_id) REFERENCES submitters(id)
jobs jobs_submitter_id_idempotency_key_key: UNIQUE (submitter_id, idempotency_key)
jobs jobs_submitter_id_not_null: NOT NULL submitter_id
jobs jobs_superseded_by_fkey: FOREIGN KEY (superseded_by) REFERENCES jobs(id)
jobs jobs_targets_not_null: NOT NULL targets
jobs jobs_updated_at_not_null: NOT NULL updated_at
lane_usage lane_usage_lane_not_null: NOT NULL lane
lane_usage lane_usage_pkey: PRIMARY KEY (lane, submitter_id)
lane_usage lane_usage_submitter_id_fkey: FOREIGN KEY (submitter_id) REFERENCES submitters(id)
lane_usage lane_usage_submitter_id_not_null: NOT NULL submitter_id
lane_usage lane_usage_updated_at_not_null: NOT NULL updated_at
lane_usage lane_usage_usage_check: CHECK ((usage >= (0)::double precision))
lane_usage lane_usage_usage_not_null: NOT NULL usage
prover_health prover_health_consecutive_failures_check: CHECK ((consecutive_failures >= 0))
prover_health prover_health_consecutive_failures_not_null: NOT NULL consecutive_failures
prover_health prover_health_image_not_null: NOT NULL image
prover_health prover_health_pkey: PRIMARY KEY (prover)
prover_health prover_health_prover_not_null: NOT NULL prover
schema_migrations schema_migrations_applied_at_not_null: NOT NULL applied_at
schema_migrations schema_migrations_name_not_null: NOT NULL name
schema_migrations schema_migrations_pkey: PRIMARY KEY (version)
schema_migrations schema_migrations_version_not_null: NOT NULL version
submitters submitters_created_at_not_null: NOT NULL created_at
submitters submitters_id_check: CHECK ((id ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'::text))
submitters submitters_id_not_null: NOT NULL id
submitters submitters_lanes_not_null: NOT NULL lanes
submitters submitters_max_queued_check: CHECK ((max_queued > 0))
submitters submitters_max_running_check: CHECK ((max_running > 0))
submitters submitters_pkey: PRIMARY KEY (id)
submitters submitters_roles_not_null: NOT NULL roles
submitters submitters_trust_check: CHECK ((trust = ANY (ARRAY['untrusted'::text, 'trusted'::text])))
submitters submitters_trust_not_null: NOT NULL trust
upload_credentials upload_credentials_attempt_id_fkey: FOREIGN KEY (attempt_id) REFERENCES attempts(id)
upload_credentials upload_credentials_attempt_id_not_null: NOT NULL attempt_id
upload_credentials upload_credentials_created_at_not_null: NOT NULL created_at
upload_credentials upload_credentials_expires_at_not_null: NOT NULL expires_at
upload_credentials upload_credentials_pkey: PRIMARY KEY (token_hash)
upload_credentials upload_credentials_token_hash_not_null: NOT NULL token_hash

CREATE UNIQUE INDEX api_tokens_id_key ON public.api_tokens USING btree (id)
CREATE UNIQUE INDEX api_tokens_pkey ON public.api_tokens USING btree (token_hash)
CREATE INDEX api_tokens_submitter ON public.api_tokens USING btree (submitter_id)
CREATE UNIQUE INDEX attempt_logs_pkey ON public.attempt_logs USING btree (attempt_id, container)
CREATE UNIQUE INDEX attempts_job_id_attempt_no_key ON public.attempts USING btree (job_id, attempt_no)
CREATE INDEX attempts_live ON public.attempts USING btree (lane) WHERE (state = ANY (ARRAY['dispatching'::text, 'running'::text]))
CREATE UNIQUE INDEX attempts_name_key ON public.attempts USING btree (name)
CREATE UNIQUE INDEX attempts_pkey ON public.attempts USING btree (id)
CREATE INDEX attempts_recent ON public.attempts USING btree (lane, created_at)
CREATE UNIQUE INDEX attestation_keys_pkey ON public.attestation_keys USING btree (keyid)
CREATE INDEX attestations_keyid ON public.attestations USING btree (keyid, issued_at)
CREATE UNIQUE INDEX attestations_pkey ON public.attestations USING btree (job_id)
CREATE UNIQUE INDEX audit_log_pkey ON public.audit_log USING btree (id)
CREATE INDEX claims_expiry ON public.claims USING btree (expires_at)
CREATE INDEX claims_holder ON public.claims USING btree (holder)
CREATE UNIQUE INDEX claims_pkey ON public.claims USING btree (attempt_id)
CREATE INDEX events_job ON public.events USING btree (job_id, id)
CREATE UNIQUE INDEX events_pkey ON public.events USING btree (id)
CREATE INDEX evidence_job ON public.evidence USING btree (job_id)
CREATE UNIQUE INDEX evidence_pkey ON public.evidence USING btree (attempt_id)
CREATE INDEX jobs_by_state ON public.jobs USING btree (state, seq)
CREATE INDEX jobs_by_submitter ON public.jobs USING btree (submitter_id, seq)
CREATE INDEX jobs_canary ON public.jobs USING btree (prover) WHERE canary
CREATE INDEX jobs_in_flight_by_submitter ON public.jobs USING btree (submitter_id) WHERE (state = ANY (ARRAY['dispatching'::text, 'running'::text]))
CREATE INDEX jobs_labels ON public.jobs USING gin (labels jsonb_path_ops)
CREATE INDEX jobs_live_groups ON public.jobs USING btree (submitter_id, concurrency_group) WHERE ((concurrency_group IS NOT NULL) AND (state = ANY (ARRAY['queued'::text, 'awaiting_approval'::text, 'dispatching'::text, 'running'::text])))
CREATE UNIQUE INDEX jobs_pkey ON public.jobs USING btree (id)
CREATE INDEX jobs_queue_age ON public.jobs USING btree (lane, seq) WHERE (state = 'queued'::text)
CREATE INDEX jobs_queue_by_submitter ON public.jobs USING btree (lane, submitter_id, priority DESC, seq) INCLUDE (id, concurrency_group) WHERE (state = 'queued'::text)
CREATE UNIQUE INDEX jobs_seq_key ON public.jobs USING btree (seq)
CREATE UNIQUE INDEX jobs_submitter_id_idempotency_key_key ON public.jobs USING btree (submitter_id, idempotency_key)
CREATE INDEX jobs_waiting_by_submitter ON public.jobs USING btree (submitter_id) WHERE (state = ANY (ARRAY['queued'::text, 'awaiting_approval'::text]))
CREATE UNIQUE INDEX lane_usage_pkey ON public.lane_usage USING btree (lane, submitter_id)
CREATE UNIQUE INDEX prover_health_pkey ON public.prover_health USING btree (prover)
CREATE UNIQUE INDEX schema_migrations_pkey ON public.schema_migrations USING btree (version)
CREATE UNIQUE INDEX submitters_pkey ON public.submitters USING btree (id)
CREATE INDEX upload_credentials_attempt ON public.upload_credentials USING btree (attempt_id)
CREATE UNIQUE INDEX upload_credentials_pkey ON public.upload_credentials USING btree (token_hash)

CREATE TRIGGER attempts_final_state BEFORE UPDATE OF state ON public.attempts FOR EACH ROW WHEN ((old.state = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text]))) EXECUTE FUNCTION refuse_leaving_final_state()
CREATE TRIGGER attempts_log_state AFTER INSERT OR UPDATE OF state ON public.attempts FOR EACH ROW EXECUTE FUNCTION log_attempt_state()
CREATE TRIGGER attestation_keys_no_change BEFORE DELETE OR UPDATE ON public.attestation_keys FOR EACH ROW EXECUTE FUNCTION signed_verdicts_append_only()
CREATE TRIGGER attestations_no_change BEFORE DELETE OR UPDATE ON public.attestations FOR EACH ROW EXECUTE FUNCTION signed_verdicts_append_only()
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
CREATE TRIGGER audit_log_no_update BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON public.events FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()
CREATE TRIGGER events_no_update BEFORE DELETE OR UPDATE ON public.events FOR EACH ROW EXECUTE FUNCTION events_append_only()
CREATE TRIGGER events_notify_job_changed AFTER INSERT ON public.events FOR EACH ROW EXECUTE FUNCTION events_notify_job_changed()
CREATE TRIGGER jobs_final_state BEFORE UPDATE OF state ON public.jobs FOR EACH ROW WHEN ((old.state = ANY (ARRAY['verified'::text, 'rejected'::text, 'error'::text, 'timed_out'::text, 'cancelled'::text]))) EXECUTE FUNCTION refuse_leaving_final_state()
CREATE TRIGGER jobs_log_state AFTER INSERT OR UPDATE OF state ON public.jobs FOR EACH ROW EXECUTE FUNCTION log_job_state()
