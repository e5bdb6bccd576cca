-- Audit search in the admin console: filters by actor, outcome and correlation id, newest first
-- (keyset paging on id). Subject, event type and time already have indexes (0001).
-- The PostgreSQL set (migrations/postgres/) must keep the same numbering and meaning.
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
CREATE INDEX audit_events_correlation ON audit_events (correlation_id);
