-- find() filters on one column and pages by log index (ORDER BY idx DESC LIMIT n).
-- With v1's (column, generated_at) indexes PostgreSQL reads and sorts every matching
-- row before returning the first page; (column, idx) indexes return a page with one
-- short index scan, whatever the number of matches (pm.find(model=...) on a big log).
DROP INDEX IF EXISTS records_output;
DROP INDEX IF EXISTS records_model;
DROP INDEX IF EXISTS records_actor;
CREATE INDEX IF NOT EXISTS records_output_idx ON records (output_sha256, idx);
CREATE INDEX IF NOT EXISTS records_model_idx ON records (model, idx);
CREATE INDEX IF NOT EXISTS records_actor_idx ON records (actor, idx);
CREATE INDEX IF NOT EXISTS records_operation_idx ON records (operation, idx);
-- Partial: status is 'ok' or 'error' and only the rare errors are worth an index.
CREATE INDEX IF NOT EXISTS records_errors_idx ON records (idx) WHERE status = 'error';
