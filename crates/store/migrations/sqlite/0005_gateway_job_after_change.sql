-- When the portal ran the steps after a gateway reset's password change (void codes and flows,
-- notify, sign out, audit): NULL until one side claims them. The waiting page and the gateway's
-- late result report both try one conditional UPDATE ... WHERE after_change_at_ms IS NULL; the
-- one whose update hit the row runs the steps, so they run exactly once per job.
ALTER TABLE gateway_jobs ADD COLUMN after_change_at_ms INTEGER;

-- Finished or given-up jobs are deleted some time after they ended (purge_expired): the job's
-- end is its finish time, or its deadline when it never finished.
CREATE INDEX gateway_jobs_ended ON gateway_jobs (COALESCE(finished_at_ms, expires_at_ms));
