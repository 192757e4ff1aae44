-- Agent checkpoints (issue 31, `store::checkpoints`): each completed node of an agent step's case,
-- keyed by the work (step key, case, code version, input versions), with what the node changed.
CREATE TABLE agent_checkpoints (
    asset_key     TEXT COLLATE "C" NOT NULL,
    partition_key TEXT COLLATE "C" NOT NULL DEFAULT '',
    case_id       TEXT COLLATE "C" NOT NULL,
    code_version  TEXT COLLATE "C" NOT NULL,
    inputs        TEXT COLLATE "C" NOT NULL,
    position      BIGINT NOT NULL,
    node          TEXT COLLATE "C" NOT NULL,
    delta         TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (asset_key, partition_key, case_id, code_version, inputs, position)
);
CREATE INDEX agent_checkpoints_created ON agent_checkpoints (created_at);
