-- Agent checkpoints (issue 31, `store::checkpoints`): each completed node of an agent step's case,
-- keyed by the work (step key, case, code version, input versions), with what the node changed.
CREATE TABLE agent_checkpoints (
    asset_key     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    case_id       TEXT NOT NULL,
    code_version  TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    position      INTEGER NOT NULL,
    node          TEXT NOT NULL,
    delta         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (asset_key, partition_key, case_id, code_version, inputs, position)
);
CREATE INDEX agent_checkpoints_created ON agent_checkpoints (created_at);
