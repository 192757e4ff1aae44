-- Why a failed step failed, as a class: `retryable` (another attempt may succeed) or `permanent`.
ALTER TABLE steps ADD COLUMN failure_class TEXT;
