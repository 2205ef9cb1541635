-- The fleet guards the replicas share (the retry budget, each downstream's circuit breaker): the engine's
-- JSON, and a version that grows at every write (writes are compare-and-set on it).
CREATE TABLE guards (
    name    TEXT   PRIMARY KEY,
    value   TEXT   NOT NULL,
    version BIGINT NOT NULL
);
