//! A throwaway database per test on the Postgres server `scripts/services.sh` starts
//! (SPINE_TEST_POSTGRES_URL), and the schema parity of the two run stores.

use sqlx::{Connection, PgConnection, Row};
use std::collections::BTreeMap;

/// The server's URL, or None outside CI when no server was started (then the test says so).
pub fn server() -> Option<String> {
    match std::env::var("SPINE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("SPINE_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL with scripts/services.sh")
        }
        _ => {
            eprintln!("skipped: no PostgreSQL (run `eval \"$(scripts/services.sh)\"` first)");
            None
        }
    }
}

/// A fresh database on the server, dropped (with its connections) when this is.
pub struct Database {
    server: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn new(server: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("spine_store_{}_{nanos}", std::process::id());
        let mut c = PgConnection::connect(server).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').expect("a URL with a database");
        Database {
            server: server.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside a runtime: drop the database from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            })
        })
        .join();
    }
}

/// Table → column → (type, NOT NULL), in a type vocabulary both share: `integer` or `text`.
type Columns = BTreeMap<String, BTreeMap<String, (String, bool)>>;

async fn postgres_columns(url: &str) -> Columns {
    let mut c = PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty,
                is_nullable::text AS nullable, collation_name::text AS coll
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out = Columns::new();
    for r in rows {
        let (t, col, ty): (String, String, String) = (r.get("t"), r.get("c"), r.get("ty"));
        let ty = match ty.as_str() {
            "bigint" => "integer",
            "text" => {
                let coll: Option<String> = r.get("coll");
                assert_eq!(
                    coll.as_deref(),
                    Some("C"),
                    "{t}.{col}: byte-order collation"
                );
                "text"
            }
            other => panic!("{t}.{col} is {other}: every integer is BIGINT, every string TEXT"),
        };
        let not_null = r.get::<String, _>("nullable") == "NO";
        out.entry(t)
            .or_default()
            .insert(col, (ty.to_string(), not_null));
    }
    out
}

async fn sqlite_columns(path: &std::path::Path) -> Columns {
    let url = format!("sqlite://{}", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out = Columns::new();
    for (t, sql) in tables {
        let cols = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info('{t}')")))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let entry = out.entry(t.clone()).or_default();
        for r in cols {
            let (col, ty): (String, String) = (r.get("name"), r.get("type"));
            let ty = match ty.as_str() {
                "INTEGER" => "integer",
                "TEXT" => "text",
                other => panic!("{t}.{col} is {other}"),
            };
            // A primary key column of SQLite is NOT NULL in Postgres whatever it says.
            let not_null = r.get::<i64, _>("notnull") == 1 || r.get::<i64, _>("pk") > 0;
            entry.insert(col, (ty.to_string(), not_null));
        }
        // Every table but a WITHOUT ROWID one has SQLite's implicit `rowid`; Postgres declares it
        // where the store reads rows in insertion order.
        if !sql.contains("WITHOUT ROWID") {
            entry.insert("rowid".into(), ("integer".into(), true));
        }
    }
    out
}

/// Both stores' schemas have the same tables with the same columns, types and NULL-ability (a
/// Postgres table may leave out SQLite's implicit `rowid` where nothing orders by it).
#[tokio::test]
async fn postgres_schema_has_every_sqlite_table_and_column() {
    let Some(server) = server() else { return };
    let db = Database::new(&server).await;
    spine_engine::store::postgres::migrate(&db.url)
        .await
        .unwrap();
    // Applying it again changes nothing.
    spine_engine::store::postgres::migrate(&db.url)
        .await
        .unwrap();
    let pg = postgres_columns(&db.url).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = spine_engine::store::open_store(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.close().await;
    let mut lite = sqlite_columns(&path).await;

    assert_eq!(
        lite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (t, cols) in &mut lite {
        if !pg[t].contains_key("rowid") {
            cols.remove("rowid");
        }
        assert_eq!(cols, &pg[t], "table {t}");
    }
}

/// Projects can share one database with a schema each: `?options[search_path]=NAME` in the state URL
/// (`{project}` fills in the project's name), the schema created on first use; their records do not
/// mix.
#[tokio::test]
async fn projects_share_a_database_with_a_schema_each() {
    use spine_engine::store::{open_store, RunStore};
    let Some(server) = server() else { return };
    if std::env::var_os("SPINE_STATE_URL").is_some() {
        // The environment overrides spine.toml's state URL (the engine tests' Postgres pass).
        return;
    }
    let db = Database::new(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str| {
        std::fs::write(
            dir.path().join("spine.toml"),
            format!(
                "[project]\nname = \"{name}\"\n[state]\nurl = \"{}?options[search_path]=p_{{project}}\"\n",
                db.url
            ),
        )
        .unwrap();
        spine_engine::project::ProjectConfig::load(dir.path()).unwrap()
    };
    let (a, b) = (config("Shop-EU"), config("shop_us"));
    assert!(
        a.state_url.ends_with("search_path]=p_shop_eu"),
        "{}",
        a.state_url
    );
    let (sa, sb): (std::sync::Arc<dyn RunStore>, _) = (
        open_store(&a.state_url).await.unwrap(),
        open_store(&b.state_url).await.unwrap(),
    );
    let r = spine_engine::RunId::new();
    sa.create_run(&super::run(&r), &[]).await.unwrap();
    assert_eq!(sa.list_runs(10).await.unwrap().len(), 1);
    assert!(
        sb.list_runs(10).await.unwrap().is_empty(),
        "another project's runs"
    );
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata
         WHERE schema_name LIKE 'p\\_%' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(schemas, ["p_shop_eu", "p_shop_us"]);
    sa.close().await;
    sb.close().await;
}
