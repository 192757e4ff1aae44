//! The SQLite run store's schema migrations, embedded in the binary at build time and applied by
//! sqlx's migrator when a store is opened.

/// The run store's migrations, embedded at build time (`engine/build.rs`): (version, description,
/// SQL) of each file of `engine/migrations/sqlite`, in version order.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));

/// The embedded migrations as sqlx's migrator reads them (checksums as sqlx computes them, so a
/// store created by an earlier build is recognised).
#[derive(Debug)]
pub(super) struct Embedded;

impl sqlx::migrate::MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    sqlx::migrate::Migration::new(
                        *version,
                        std::borrow::Cow::Borrowed(*description),
                        sqlx::migrate::MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order_as_written() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len());
        for (path, (version, description, sql)) in files.iter().zip(MIGRATIONS) {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                name,
                format!("{version:04}_{}.sql", description.replace(' ', "_"))
            );
            assert_eq!(std::fs::read_to_string(path).unwrap(), *sql, "{name}");
        }
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
