-- Jobs, the ledger of their side-effecting calls, the references of their attempts, and reports held for
-- references not known yet. Times are milliseconds since the Unix epoch on the engine's clock.

CREATE TABLE jobs (
    -- AUTOINCREMENT: an id is never reused, even after its job is pruned (idempotency keys carry it).
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id         TEXT    NOT NULL,
    phase            TEXT    NOT NULL CHECK (phase IN ('waiting', 'calling', 'awaiting', 'finished')),
    -- At rest: when the job is next due. Held: when its lease expires, so that an expired lease is due.
    wake_at          INTEGER NOT NULL,
    lease_owner      TEXT,
    -- Grows at every claim; every write of a holder names the epoch it holds.
    epoch            INTEGER NOT NULL DEFAULT 0,
    -- Whether the latest claim found an earlier holder's lease expired on the job (a takeover).
    taken_over       INTEGER NOT NULL DEFAULT 0,
    payload          TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    last_code        TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    reference        TEXT,
    report           TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    outcome          TEXT
);

-- One active job per asset; a later job of the same asset may start once the earlier one has finished.
CREATE UNIQUE INDEX jobs_one_active_per_asset ON jobs (asset_id) WHERE phase <> 'finished';
-- Claims: jobs at rest that are due and jobs whose lease expired alike (both are `wake_at <= now`).
CREATE INDEX jobs_due ON jobs (wake_at) WHERE phase <> 'finished';
-- The newest job of an asset, finished ones included (reports and `job_of` for an ended job).
CREATE INDEX jobs_of_asset ON jobs (asset_id, id);
-- Pruning finished jobs past their retention.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE phase = 'finished';

CREATE TABLE calls (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    hook        TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    answered_at INTEGER,
    answer      TEXT
);
CREATE INDEX calls_of_job ON calls (job_id, id);

-- Every reference an attempt of a job answered with, so that a report by reference finds its job.
CREATE TABLE job_references (
    reference TEXT    PRIMARY KEY,
    job_id    INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX job_references_of_job ON job_references (job_id);

-- Reports for a reference no job has named yet (its attempt may be being submitted right now).
CREATE TABLE held_reports (
    reference TEXT    PRIMARY KEY,
    report    TEXT    NOT NULL,
    at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX held_reports_at ON held_reports (at);
