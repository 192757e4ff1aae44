-- The audit log (issue 32, `store::audit`): every mutating action, who, what, when and from where;
-- append-only, each row's hash covering the row and the previous row's hash.
CREATE TABLE audit_log (
    id        BIGINT NOT NULL PRIMARY KEY,
    at        TEXT COLLATE "C" NOT NULL,
    actor     TEXT COLLATE "C" NOT NULL,
    origin    TEXT COLLATE "C" NOT NULL,
    host      TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    target    TEXT COLLATE "C" NOT NULL,
    details   TEXT COLLATE "C" NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash      TEXT COLLATE "C" NOT NULL
);
