-- Assets as they were created (through the service's gateway), so that a failure of one can be resubmitted
-- with its parameters; and the lineage of each: the references (LightFlow uuids) of the attempts that replaced it.
CREATE TABLE assets (
    asset_id   TEXT   PRIMARY KEY,
    -- Another name it is found by: the id the gateway put in its callback URL before LightFlow gave it a uuid.
    alias      TEXT   UNIQUE,
    parameters TEXT   NOT NULL,
    created_at INTEGER NOT NULL,
    -- Whether its first end is known (a callback came, or LightFlow was asked): until then, the service asks.
    settled    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX assets_open ON assets (created_at) WHERE NOT settled;

CREATE TABLE lineage (
    reference   TEXT   PRIMARY KEY,
    asset_id    TEXT   NOT NULL,
    attempt_key TEXT   NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX lineage_of_asset ON lineage (asset_id, at);
