//! The audit log (issue 32): every mutating action — materialize, backfill, cancel, signal,
//! approve, publish, optimize, the UI's actions… — with who (`SPINE_ACTOR`, else the OS user), what,
//! when and from where (the CLI or the UI, and the host). Append-only and hash-chained: each entry's
//! hash is SHA-256 over its fields and the previous entry's hash, so changing or removing a stored
//! entry breaks the chain at that entry, and [`verify`] names it. `gc` never prunes it.

use super::StoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An action to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    /// Who: `SPINE_ACTOR`, else the OS user.
    pub actor: String,
    /// From where: `cli`, `ui`, or a library caller's name.
    pub origin: String,
    /// The host.
    pub host: String,
    /// What: `materialize`, `cancel`, `approve`, ….
    pub action: String,
    /// What it acted on: a selection, a run id, an asset key (empty when none).
    pub target: String,
    /// The action's arguments (JSON; secrets are redacted before it is stored).
    pub details: serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, … in the order they were appended.
    pub id: i64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// From where.
    pub origin: String,
    /// The host.
    pub host: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// The arguments, as stored (JSON text).
    pub details: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) over this entry's fields and `prev_hash`.
    pub hash: String,
}

impl AuditRecord {
    /// The hash this entry's fields give.
    pub fn expected_hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.prev_hash.as_str(),
            &self.id.to_string(),
            &self.at,
            &self.actor,
            &self.origin,
            &self.host,
            &self.action,
            &self.target,
            &self.details,
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}

/// Where a chain breaks: the first entry that was changed, or follows a removed or changed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The entry.
    pub id: i64,
    /// What is wrong with it.
    pub why: String,
}

/// Checks `entries` (in id order, from the first): each id follows the one before, each
/// `prev_hash` is the previous entry's hash, and each hash matches the entry's fields.
pub fn verify(entries: &[AuditRecord]) -> Result<(), Broken> {
    let mut prev = GENESIS.to_string();
    for (next_id, e) in (1..).zip(entries) {
        if e.id != next_id {
            return Err(Broken {
                id: e.id,
                why: format!(
                    "entry {next_id} is missing: the entry before {} was removed",
                    e.id
                ),
            });
        }
        if e.prev_hash != prev {
            return Err(Broken {
                id: e.id,
                why:
                    "its link to the entry before does not match: that entry was changed or removed"
                        .into(),
            });
        }
        if e.expected_hash() != e.hash {
            return Err(Broken {
                id: e.id,
                why: "its fields do not match its hash: it was changed".into(),
            });
        }
        prev = e.hash.clone();
    }
    Ok(())
}

/// The audit half of the run store.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `entry` after the last one, in one transaction that serializes appends (two
    /// processes never both extend the same entry).
    async fn append_audit(&self, entry: &NewAudit) -> StoreResult<AuditRecord>;
    /// Entries with `id > after`, oldest first, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>>;
}
