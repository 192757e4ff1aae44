//! A source read from PostgreSQL: the rows of a query, over a URL taken from the environment.
//!
//! ```yaml
//! key: raw/accounts
//! kind: source
//! postgres:
//!   url_env: SHOP_DATABASE_URL    # the variable holding the postgresql:// URL (default DATABASE_URL)
//!   query: SELECT id, owner, balance FROM accounts
//! ```
//!
//! The schema comes from the statement's description (prepared, not run): Postgres types map to
//! Arrow (`int2/4/8`, `float4/8`, `numeric` as float64, `bool`, text types, `date`, `timestamp`,
//! `timestamptz`; anything else as its text form). An observation runs the query and hashes the rows
//! (order-independent), so a dependent goes stale exactly when the result changed; a dependent step
//! reads the query again and refuses a result whose hash is not the observed one.

use crate::error::first_line;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Column, Connection, Executor, Row, SqlSafeStr, Statement, TypeInfo};
use std::sync::Arc;

/// The `postgres:` block of a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgFields {
    /// The environment variable with the URL.
    pub url_env: Option<String>,
    /// The query.
    pub query: String,
}

/// A Postgres source, validated.
#[derive(Debug, Clone)]
pub struct PgSource {
    /// The environment variable holding the URL.
    pub url_env: String,
    /// The query whose rows are the source.
    pub query: String,
}

/// How a column is decoded.
#[derive(Debug, Clone, Copy)]
enum Decode {
    I16,
    I32,
    I64,
    F32,
    F64,
    Bool,
    Text,
    Date,
    Timestamp,
    TimestampTz,
}

impl Decode {
    fn of(pg_type: &str) -> (Decode, &'static str) {
        match pg_type {
            "INT2" => (Decode::I16, ""),
            "INT4" => (Decode::I32, ""),
            "INT8" => (Decode::I64, ""),
            "FLOAT4" => (Decode::F32, ""),
            "FLOAT8" => (Decode::F64, ""),
            "NUMERIC" => (Decode::F64, "::float8"),
            "BOOL" => (Decode::Bool, ""),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => (Decode::Text, ""),
            "DATE" => (Decode::Date, ""),
            "TIMESTAMP" => (Decode::Timestamp, ""),
            "TIMESTAMPTZ" => (Decode::TimestampTz, ""),
            _ => (Decode::Text, "::text"),
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Decode::I16 => DataType::Int16,
            Decode::I32 => DataType::Int32,
            Decode::I64 => DataType::Int64,
            Decode::F32 => DataType::Float32,
            Decode::F64 => DataType::Float64,
            Decode::Bool => DataType::Boolean,
            Decode::Text => DataType::Utf8,
            Decode::Date => DataType::Date32,
            Decode::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Decode::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

impl PgSource {
    async fn connect(&self) -> Result<PgConnection, String> {
        let url = std::env::var(&self.url_env).map_err(|_| {
            format!(
                "the environment variable {} is not set; set it to the database's postgresql:// URL",
                self.url_env
            )
        })?;
        // The URL (and its password alone, which a driver's message may quote) is a secret.
        crate::redact::register(&url);
        if let Some(pw) = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
        {
            crate::redact::register(&pw);
        }
        PgConnection::connect(&url).await.map_err(|e| {
            format!(
                "cannot connect to the database in {}: {}",
                self.url_env,
                first_line(&e.to_string())
            )
        })
    }

    /// The query's columns: name, decoding and the cast that makes it decodable.
    async fn describe(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<(String, Decode, &'static str)>, String> {
        let stmt = conn
            .prepare(AssertSqlSafe(self.query.clone()).into_sql_str())
            .await
            .map_err(|e| format!("the query does not plan: {}", first_line(&e.to_string())))?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| {
                let (d, cast) = Decode::of(c.type_info().name());
                (c.name().to_string(), d, cast)
            })
            .collect())
    }

    /// The Arrow schema of the query's rows, from its description (the query is not run). The error
    /// says whether the definition is at fault (`true`: the query does not plan) or not (`false`: the
    /// URL variable is not set, the server cannot be reached).
    pub async fn schema(&self) -> Result<SchemaRef, (bool, String)> {
        let mut conn = self.connect().await.map_err(|m| (false, m))?;
        let cols = self.describe(&mut conn).await.map_err(|m| (true, m))?;
        let _ = conn.close().await;
        Ok(schema_of(&cols))
    }

    /// Runs the query: its rows as one batch.
    pub async fn rows(&self) -> Result<RecordBatch, String> {
        let mut conn = self.connect().await?;
        let cols = self.describe(&mut conn).await?;
        let select: Vec<String> = cols
            .iter()
            .map(|(n, _, cast)| {
                let q = format!("\"{}\"", n.replace('"', "\"\""));
                format!("{q}{cast} AS {q}")
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM ({}) AS spine_source",
            select.join(", "),
            self.query
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .map_err(|e| format!("the query failed: {}", first_line(&e.to_string())))?;
        let _ = conn.close().await;
        let schema = schema_of(&cols);
        let arrays: Vec<ArrayRef> = cols
            .iter()
            .enumerate()
            .map(|(i, (name, d, _))| {
                column(&rows, i, *d).map_err(|e| format!("column '{name}': {e}"))
            })
            .collect::<Result<_, _>>()?;
        RecordBatch::try_new(schema, arrays).map_err(|e| e.to_string())
    }
}

fn schema_of(cols: &[(String, Decode, &'static str)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, d, _)| Field::new(n, d.data_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Column `i` of `rows`, decoded as `d`.
fn column(rows: &[PgRow], i: usize, d: Decode) -> Result<ArrayRef, sqlx::Error> {
    macro_rules! build {
        ($builder:ty, $t:ty, $map:expr) => {{
            let mut b = <$builder>::with_capacity(rows.len());
            for r in rows {
                let v: Option<$t> = r.try_get(i)?;
                b.append_option(v.map($map));
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok(match d {
        Decode::I16 => build!(Int16Builder, i16, |v| v),
        Decode::I32 => build!(Int32Builder, i32, |v| v),
        Decode::I64 => build!(Int64Builder, i64, |v| v),
        Decode::F32 => build!(Float32Builder, f32, |v| v),
        Decode::F64 => build!(Float64Builder, f64, |v| v),
        Decode::Bool => build!(BooleanBuilder, bool, |v| v),
        Decode::Date => build!(Date32Builder, chrono::NaiveDate, |v| (v - epoch).num_days()
            as i32),
        Decode::Timestamp => build!(TimestampMicrosecondBuilder, chrono::NaiveDateTime, |v| v
            .and_utc()
            .timestamp_micros()),
        Decode::TimestampTz => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for r in rows {
                let v: Option<chrono::DateTime<chrono::Utc>> = r.try_get(i)?;
                b.append_option(v.map(|v| v.timestamp_micros()));
            }
            Arc::new(b.finish())
        }
        Decode::Text => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            for r in rows {
                let v: Option<String> = r.try_get(i)?;
                b.append_option(v);
            }
            Arc::new(b.finish())
        }
    })
}
