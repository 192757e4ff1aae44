//! The run stores' schema migrations, one set per backend, embedded in the binary at build time and
//! applied by sqlx's migrator when a store is opened.

/// A migration: (version, description, SQL).
pub(crate) type Migration = (i64, &'static str, &'static str);

/// The SQLite store's migrations, embedded at build time (`engine/build.rs`): each file of
/// `engine/migrations/sqlite`, in version order.
pub(crate) const SQLITE: &[Migration] = include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));

/// The Postgres store's, from `engine/migrations/postgres`.
pub(crate) const POSTGRES: &[Migration] =
    include!(concat!(env!("OUT_DIR"), "/migrations_postgres.rs"));

/// Embedded migrations as sqlx's migrator reads them (checksums as sqlx computes them, so a store
/// created by an earlier build is recognised).
#[derive(Debug)]
pub(crate) struct Embedded(pub &'static [Migration]);

impl sqlx::migrate::MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async move {
            Ok(self
                .0
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
        for (backend, migrations) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            embedded_as_written(backend, migrations);
        }
    }

    fn embedded_as_written(backend: &str, migrations: &[Migration]) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), migrations.len());
        for (path, (version, description, sql)) in files.iter().zip(migrations) {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                name,
                format!("{version:04}_{}.sql", description.replace(' ', "_"))
            );
            assert_eq!(std::fs::read_to_string(path).unwrap(), *sql, "{name}");
        }
        assert!(migrations.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
