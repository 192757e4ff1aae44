// The SQLite implementation of [`LineageStore`] and [`LineageReads`].

use super::*;
use crate::store::lineage::LineageReads;
use crate::store::lineage::LineageStore;

#[async_trait]
impl LineageStore for Store {
    async fn materialization(&self, id: i64) -> StoreResult<Option<Materialization>> {
        sqlx::query("SELECT * FROM materializations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| mat_from_row(&r))
            .transpose()
    }

    async fn readers(&self, key: &AssetKey, id: i64) -> StoreResult<Vec<Materialization>> {
        sqlx::query(
            "SELECT DISTINCT m.* FROM lineage l JOIN materializations m ON m.id = l.materialization_id
             WHERE l.upstream_key = $1 AND l.upstream_materialization_id = $2 ORDER BY m.id",
        )
        .bind(key.as_str())
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(mat_from_row)
        .collect()
    }
}

#[async_trait]
impl LineageReads for Store {
    async fn latest_column_lineage(
        &self,
    ) -> StoreResult<std::collections::BTreeMap<AssetKey, crate::column_lineage::ColumnLineage>>
    {
        use crate::column_lineage::{ColumnSource, How, OutputColumn};
        let rows = sqlx::query(
            "SELECT c.asset_key, c.column_name, c.position, c.upstream_key, c.upstream_column, c.how
             FROM column_lineage c JOIN (SELECT asset_key, MAX(materialization_id) AS id
               FROM column_lineage GROUP BY asset_key) l ON c.materialization_id = l.id
             ORDER BY c.asset_key, c.position, c.rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: std::collections::BTreeMap<AssetKey, Vec<OutputColumn>> = Default::default();
        for r in &rows {
            let key = key_from(r.try_get("asset_key")?)?;
            let column: String = r.try_get("column_name")?;
            let position: i64 = r.try_get("position")?;
            let columns = out.entry(key).or_default();
            if columns.len() as i64 <= position {
                columns.push(OutputColumn {
                    column,
                    sources: Vec::new(),
                });
            }
            let how: Option<String> = r.try_get("how")?;
            let (Some(up), Some(col), Some(how)) = (
                r.try_get::<Option<String>, _>("upstream_key")?,
                r.try_get::<Option<String>, _>("upstream_column")?,
                how,
            ) else {
                continue;
            };
            let how: How = serde_json::from_value(serde_json::Value::String(how))
                .map_err(|e| StoreError::Corrupt(format!("bad column lineage relation: {e}")))?;
            if let Some(c) = columns.last_mut() {
                c.sources.push(ColumnSource {
                    asset: key_from(up)?,
                    column: col,
                    how,
                });
            }
        }
        Ok(out)
    }
}
