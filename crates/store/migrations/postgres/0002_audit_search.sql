-- Audit search in the admin console: filters by actor, outcome and correlation id, newest first
-- (keyset paging on id). Same meaning as ../sqlite/0002_audit_search.sql.
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
CREATE INDEX audit_events_correlation ON audit_events (correlation_id);
