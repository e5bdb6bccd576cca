-- PostgreSQL dialect of ../sqlite/0005_gateway_job_after_change.sql: when the steps after a
-- gateway reset's change were claimed (NULL until then; one conditional UPDATE decides who runs
-- them), and an index on when a job ended for the purge of old jobs.
ALTER TABLE gateway_jobs ADD COLUMN after_change_at_ms BIGINT;

CREATE INDEX gateway_jobs_ended ON gateway_jobs ((COALESCE(finished_at_ms, expires_at_ms)));
