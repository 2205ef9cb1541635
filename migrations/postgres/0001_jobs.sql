-- Jobs, the ledger of their side-effecting calls, the references of their attempts, and reports held for
-- references not known yet. Times are milliseconds since the Unix epoch on the engine's clock (the database's,
-- read by the replicas).

CREATE TABLE jobs (
    -- An identity, never reused, even after its job is pruned (idempotency keys carry it).
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id         TEXT    NOT NULL,
    phase            TEXT    NOT NULL CHECK (phase IN ('waiting', 'calling', 'awaiting', 'finished')),
    -- At rest: when the job is next due. Held: when its lease expires, so that an expired lease is due.
    wake_at          BIGINT  NOT NULL,
    lease_owner      TEXT,
    -- Grows at every claim; every write of a holder names the epoch it holds.
    epoch            BIGINT  NOT NULL DEFAULT 0,
    -- Whether the latest claim found an earlier holder's lease expired on the job (a takeover).
    taken_over       BOOLEAN NOT NULL DEFAULT false,
    payload          TEXT    NOT NULL,
    version          BIGINT  NOT NULL,
    last_code        TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    reference        TEXT,
    report           TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
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
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key         TEXT   NOT NULL,
    hook        TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    answered_at BIGINT,
    answer      TEXT
);
CREATE INDEX calls_of_job ON calls (job_id, id);

-- Every reference an attempt of a job answered with, so that a report by reference finds its job.
CREATE TABLE job_references (
    reference TEXT   PRIMARY KEY,
    job_id    BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE
);
CREATE INDEX job_references_of_job ON job_references (job_id);

-- Reports for a reference no job has named yet (its attempt may be being submitted right now).
CREATE TABLE held_reports (
    reference TEXT   PRIMARY KEY,
    report    TEXT   NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX held_reports_at ON held_reports (at);
