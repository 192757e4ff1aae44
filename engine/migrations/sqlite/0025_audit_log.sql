-- The audit log (issue 32, `store::audit`): every mutating action, who, what, when and from where;
-- append-only, each row's hash covering the row and the previous row's hash.
CREATE TABLE audit_log (
    id        INTEGER NOT NULL PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    origin    TEXT NOT NULL,
    host      TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
