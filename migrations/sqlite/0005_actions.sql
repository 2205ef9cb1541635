-- What operators did through the web view (cancel, retry now): who (a role and a token's fingerprint, never the
-- token), what, when, and what came of it. Pruned with the jobs, after the retention period.
CREATE TABLE actions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    asset_id TEXT    NOT NULL,
    job_id   INTEGER,
    action   TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    who      TEXT    NOT NULL,
    answer   TEXT    NOT NULL
);
CREATE INDEX actions_of_asset ON actions (asset_id, id);
CREATE INDEX actions_at ON actions (at);

-- The web view's pages over many jobs: the list by state and by code, newest first, and the chart of the jobs
-- submitted over the last hours (a covering index: the chart never reads the payloads).
CREATE INDEX jobs_by_phase ON jobs (phase, id) WHERE phase <> 'finished';
CREATE INDEX jobs_by_outcome ON jobs (outcome, id) WHERE phase = 'finished';
CREATE INDEX jobs_by_code ON jobs (last_code, id);
CREATE INDEX jobs_created ON jobs (created_at, last_code, phase, outcome);
