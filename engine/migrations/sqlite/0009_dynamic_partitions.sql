-- Dynamic partition sets: keys added at run time (`assets partitions add NAME KEY…`), in order.
CREATE TABLE dynamic_partitions (
    name     TEXT NOT NULL,
    key      TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
