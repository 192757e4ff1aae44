// The implementation of [`AuditStore`] (`store::audit`): appends serialized by the write lock
// (SQLite) or a transaction-level lock (Postgres), each entry chained to the last.

use super::*;
use crate::store::audit::{AuditRecord, AuditStore, NewAudit, GENESIS};

fn audit_from_row(r: &DbRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        origin: r.try_get("origin")?,
        host: r.try_get("host")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

#[async_trait]
impl AuditStore for Store {
    async fn append_audit(&self, entry: &NewAudit) -> StoreResult<AuditRecord> {
        let mut tx = self.write().await?;
        xact_lock(&mut tx, "spine:audit").await?;
        let last = sqlx::query("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (id, prev_hash) = match last {
            Some(r) => (
                r.try_get::<i64, _>("id")? + 1,
                r.try_get::<String, _>("hash")?,
            ),
            None => (1, GENESIS.to_string()),
        };
        let mut rec = AuditRecord {
            id,
            at: self.clock.stamp(),
            actor: entry.actor.clone(),
            origin: entry.origin.clone(),
            host: entry.host.clone(),
            action: entry.action.clone(),
            target: crate::redact::redact(&entry.target).into_owned(),
            details: crate::redact::redact(&entry.details.to_string()).into_owned(),
            prev_hash,
            hash: String::new(),
        };
        rec.hash = rec.expected_hash();
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, origin, host, action, target, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(rec.id)
        .bind(&rec.at)
        .bind(&rec.actor)
        .bind(&rec.origin)
        .bind(&rec.host)
        .bind(&rec.action)
        .bind(&rec.target)
        .bind(&rec.details)
        .bind(&rec.prev_hash)
        .bind(&rec.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
