-- What each gateway may do, decided by the operator at registration: the job kinds the portal
-- hands it (JSON array of `unlock`, `reset`). A gateway's own poll header only narrows this.
-- Gateways registered before this column existed stay unlock-only: reset must be granted.
ALTER TABLE gateways ADD COLUMN allowed_kinds TEXT NOT NULL DEFAULT '["unlock"]';
