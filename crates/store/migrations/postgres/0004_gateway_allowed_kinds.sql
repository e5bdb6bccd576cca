-- PostgreSQL dialect of ../sqlite/0004_gateway_allowed_kinds.sql: the job kinds the operator
-- allowed a gateway at registration; existing gateways stay unlock-only.
ALTER TABLE gateways ADD COLUMN allowed_kinds JSONB NOT NULL DEFAULT '["unlock"]'
    CHECK (jsonb_typeof(allowed_kinds) = 'array');
