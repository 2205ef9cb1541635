-- Reports name the attempt they are about: the attempt under way (0 when none) and when it began, so that a
-- report of an earlier attempt is told apart. A job may be submitted with a key that makes a second hand-over
-- of the same failure the same job, for as long as the first is kept.
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN attempt_at INTEGER;
ALTER TABLE jobs ADD COLUMN dedupe_key TEXT;
-- A job that awaits a result when this migration runs awaits its latest attempt.
UPDATE jobs SET attempt = attempts, attempt_at = updated_at WHERE phase = 'awaiting';
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL;
