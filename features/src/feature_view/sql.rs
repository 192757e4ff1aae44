//! The query of a feature view: per entity and cutoff `c`, aggregations of the upstream's events over
//! trailing windows `[c − w, c)`. Time is compared as the timestamp column's raw integer (its unit
//! since the epoch, UTC), so the windows are exact for any unit or timezone and no interval arithmetic
//! is needed.
//!
//! Two shapes, one set of aggregate expressions:
//! - **at one cutoff** (a time partition: its window's end): the events of `[c − horizon, c)`, grouped
//!   by entity;
//! - **on a grid** (every `every`, from the epoch): each event is copied to the grid points it counts
//!   for (at most `⌈horizon / every⌉`; a `CROSS JOIN` with a constant list, so no range join), then
//!   grouped by entity and cutoff. Grid points end with the one after the newest event.
//!
//! An entity has a row at a cutoff when it has an event in `[c − horizon, c)`; the horizon is the
//! longest window, or the TTL when that is longer (so an entity idle for a while still has a row, with
//! counts of 0, until the TTL).

use super::tiles::Tiles;
use super::{Aggregation, Feature};
use arrow::datatypes::{DataType, Schema, TimeUnit};

/// Internal column names: the event time and the cutoff as integers, the grid offset.
pub(crate) const T: &str = "__spine_t";
pub(crate) const C: &str = "__spine_c";
const I: &str = "__spine_i";

/// Where the snapshots are taken.
#[derive(Debug, Clone, Copy)]
pub enum Cutoffs {
    /// One cutoff, in the timestamp column's unit since the epoch.
    At(i64),
    /// Every so many of the column's units from the epoch, through the one after the newest event.
    Every(i64),
}

/// The query's inputs.
pub struct ViewQuery<'a> {
    /// The upstream table's name in the session.
    pub table: &'a str,
    /// Entity key columns.
    pub entities: &'a [String],
    /// The event timestamp column (also the name of the output's cutoff column).
    pub timestamp: &'a str,
    /// Its type (a timestamp).
    pub timestamp_type: &'a DataType,
    /// The features.
    pub features: &'a [Feature],
    /// How far back an entity's events give it a row.
    pub horizon: std::time::Duration,
    /// The upstream's schema, when known: a grid is tiled (see [`super::tiles`]) only when it is.
    pub schema: Option<&'a Schema>,
}

/// `"c"` for SQL.
pub(crate) fn ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// The raw units of `t` (a timestamp type) in one second; `None` for any other type.
pub fn units_per_second(t: &DataType) -> Option<i64> {
    match t {
        DataType::Timestamp(unit, _) => Some(match unit {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }),
        _ => None,
    }
}

/// `d` in raw units of `per_second` (at least 1).
pub fn raw(d: std::time::Duration, per_second: i64) -> i64 {
    let nanos = d.as_nanos() as i128 * per_second as i128 / 1_000_000_000;
    (nanos.clamp(1, i64::MAX as i128)) as i64
}

fn aggregate(f: &Feature, per_second: i64, tiles: Option<&Tiles>) -> String {
    let w = raw(f.window, per_second);
    let inside = format!("{T} >= {C} - {w}");
    if let Some(tiles) = tiles {
        return format!("{} AS {}", tiles.aggregate(f, &inside), ident(&f.name));
    }
    let col = f.column.as_deref().map(ident);
    let when = |v: &str| format!("CASE WHEN {inside} THEN {v} END");
    let expr = match (f.aggregation, col) {
        (Aggregation::Count, None) => format!("COUNT({})", when("1")),
        (Aggregation::Count, Some(c)) => format!("COUNT({})", when(&c)),
        (Aggregation::Distinct, Some(c)) => format!("COUNT(DISTINCT {})", when(&c)),
        (Aggregation::Sum, Some(c)) => format!("SUM({})", when(&c)),
        (Aggregation::Mean, Some(c)) => format!("AVG({})", when(&c)),
        (Aggregation::Min, Some(c)) => format!("MIN({})", when(&c)),
        (Aggregation::Max, Some(c)) => format!("MAX({})", when(&c)),
        // The newest event of the horizon is the newest of every window it falls in; a window
        // with no event has none.
        (Aggregation::Last, Some(c)) => {
            format!("CASE WHEN MAX({T}) >= {C} - {w} THEN last_value({c} ORDER BY {T}, {c}) END")
        }
        // Refused when the view is configured.
        (_, None) => "NULL".to_string(),
    };
    format!("{expr} AS {}", ident(&f.name))
}

/// The query.
pub fn view_sql(q: &ViewQuery<'_>, cutoffs: Cutoffs) -> Result<String, String> {
    let per_second = units_per_second(q.timestamp_type).ok_or_else(|| {
        format!(
            "'{}'.{} is {}, not a timestamp: CAST it upstream",
            q.table, q.timestamp, q.timestamp_type
        )
    })?;
    let horizon = raw(q.horizon, per_second);
    let table = ident(q.table);
    let ts = ident(q.timestamp);
    let keys: Vec<String> = q.entities.iter().map(|k| ident(k)).collect();
    let keys = keys.join(", ");
    let not_null: Vec<String> = q
        .entities
        .iter()
        .map(|k| format!("{} IS NOT NULL", ident(k)))
        .collect();
    let not_null = not_null.join(" AND ");
    let events = format!("SELECT *, CAST({ts} AS BIGINT) AS {T} FROM {table} WHERE {not_null}");
    let mut tiles = None;
    let rows = match cutoffs {
        Cutoffs::At(c) => format!(
            "SELECT *, CAST({c} AS BIGINT) AS {C} FROM ({events}) e WHERE {T} >= {} AND {T} < {c}",
            c.saturating_sub(horizon)
        ),
        Cutoffs::Every(every) => {
            let every = every.max(1);
            let copies = (horizon + every - 1) / every;
            let offsets: Vec<String> = (1..=copies.max(1)).map(|i| format!("({i})")).collect();
            tiles = Tiles::plan(q.features, q.schema, every, horizon, per_second);
            let events = match &tiles {
                Some(t) => t.sql(&events, &keys),
                None => events,
            };
            format!(
                "SELECT * FROM (SELECT e.*, {T} - ((({T} % {every}) + {every}) % {every}) + {every} * o.{I} AS {C} \
                 FROM ({events}) e CROSS JOIN (VALUES {}) AS o({I})) g \
                 WHERE {T} >= {C} - {horizon} AND {C} - {every} <= (SELECT MAX(CAST({ts} AS BIGINT)) FROM {table})",
                offsets.join(", ")
            )
        }
    };
    let aggregates: Vec<String> = q
        .features
        .iter()
        .map(|f| aggregate(f, per_second, tiles.as_ref()))
        .collect();
    Ok(format!(
        "SELECT {keys}, arrow_cast({C}, '{}') AS {ts}, {} FROM ({rows}) r GROUP BY {keys}, {C}",
        q.timestamp_type,
        aggregates.join(", ")
    ))
}
