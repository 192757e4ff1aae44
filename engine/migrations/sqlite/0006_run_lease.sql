-- The executor of a running run renews a lease on it (with its step claims): a run whose lease ran out
-- is interrupted wherever its executor was (pid + host only tells for this host).
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until INTEGER;   -- milliseconds since the Unix epoch
