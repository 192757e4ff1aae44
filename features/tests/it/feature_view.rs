//! The feature view's query on crafted events: trailing windows end strictly before the cutoff, each
//! aggregation counts what its window holds, idle entities drop out after the horizon, and a grid of
//! snapshots equals one query per cutoff (what a backfill of every partition runs).

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::array::{TimestampMicrosecondArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use spine_features::feature_view::sql::{view_sql, Cutoffs, ViewQuery};
use spine_features::feature_view::{Aggregation, Feature};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;
const D: i64 = 24 * H;

/// Events: (driver, ms since the epoch, fare, rider).
fn events(rows: &[(&str, i64, f64, &str)], micros_utc: bool) -> RecordBatch {
    let (ts_type, ts): (DataType, Arc<dyn Array>) = if micros_utc {
        (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1 * 1000))
                    .with_timezone("UTC"),
            ),
        )
    } else {
        (
            DataType::Timestamp(TimeUnit::Millisecond, None),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )),
        )
    };
    let schema = Schema::new(vec![
        Field::new("driver", DataType::Utf8, true),
        Field::new("ts", ts_type, true),
        Field::new("fare", DataType::Float64, true),
        Field::new("rider", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ts,
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
        ],
    )
    .unwrap()
}

fn feature(column: Option<&str>, aggregation: Aggregation, hours: u64, name: &str) -> Feature {
    Feature {
        name: name.to_string(),
        column: column.map(str::to_string),
        aggregation,
        window: Duration::from_secs(hours * 3600),
    }
}

fn features() -> Vec<Feature> {
    vec![
        feature(None, Aggregation::Count, 1, "count_1h"),
        feature(None, Aggregation::Count, 24, "count_1d"),
        feature(None, Aggregation::Count, 168, "count_7d"),
        feature(Some("fare"), Aggregation::Sum, 24, "fare_sum_1d"),
        feature(Some("fare"), Aggregation::Mean, 168, "fare_mean_7d"),
        feature(Some("fare"), Aggregation::Min, 168, "fare_min_7d"),
        feature(Some("fare"), Aggregation::Max, 24, "fare_max_1d"),
        feature(Some("fare"), Aggregation::Last, 1, "fare_last_1h"),
        feature(Some("fare"), Aggregation::Last, 168, "fare_last_7d"),
        feature(
            Some("rider"),
            Aggregation::Distinct,
            168,
            "rider_distinct_7d",
        ),
    ]
}

/// Runs the view's query over `batch`; rows as `column=value` strings, sorted.
async fn run(
    batch: RecordBatch,
    features: &[Feature],
    horizon_h: u64,
    cutoffs: Cutoffs,
) -> Vec<String> {
    let ctx = SessionContext::new();
    let ts_type = batch.schema().field(1).data_type().clone();
    let schema = batch.schema();
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table("events/trips", Arc::new(table)).unwrap();
    let entities = vec!["driver".to_string()];
    let q = ViewQuery {
        table: "events/trips",
        entities: &entities,
        timestamp: "ts",
        timestamp_type: &ts_type,
        features,
        horizon: Duration::from_secs(horizon_h * 3600),
        schema: Some(&schema),
    };
    let sql = view_sql(&q, cutoffs).unwrap();
    let out = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in &out {
        assert_eq!(
            b.schema().field(1).data_type(),
            &ts_type,
            "the cutoff keeps the event time's type"
        );
        let fmt: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default().with_null("NULL"))
                    .unwrap()
            })
            .collect();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .zip(&fmt)
                .map(|(f, v)| format!("{}={}", f.name(), v.value(i)))
                .collect();
            rows.push(cells.join(" "));
        }
    }
    rows.sort();
    rows
}

fn crafted() -> Vec<(&'static str, i64, f64, &'static str)> {
    let c = 10 * D; // the cutoff: day 10, 00:00
    vec![
        ("d1", c - 30 * MIN, 10.0, "a"), // in every window
        ("d1", c - 12 * H, 5.0, "b"),    // 1d and 7d
        ("d1", c - 3 * D, 1.0, "a"),     // 7d only
        ("d1", c, 100.0, "z"),           // at the cutoff: not before it, in no window
        ("d1", c + H, 100.0, "z"),       // the future
        ("d2", c - 2 * D, 7.0, "c"),     // idle in the last day
        ("d3", c - 8 * D, 3.0, "d"),     // past the 7-day horizon: no row
    ]
}

#[tokio::test]
async fn each_window_holds_exactly_the_events_before_the_cutoff() {
    for micros_utc in [false, true] {
        let unit = if micros_utc { 1000 } else { 1 };
        let rows = run(
            events(&crafted(), micros_utc),
            &features(),
            168,
            Cutoffs::At(10 * D * unit),
        )
        .await;
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let ts = if micros_utc {
            "1970-01-11T00:00:00Z"
        } else {
            "1970-01-11T00:00:00"
        };
        assert_eq!(
            rows[0],
            format!("driver=d1 ts={ts} count_1h=1 count_1d=2 count_7d=3 fare_sum_1d=15.0 fare_mean_7d=5.333333333333333 \
             fare_min_7d=1.0 fare_max_1d=10.0 fare_last_1h=10.0 fare_last_7d=10.0 rider_distinct_7d=2"),
        );
        assert_eq!(
            rows[1],
            format!("driver=d2 ts={ts} count_1h=0 count_1d=0 count_7d=1 fare_sum_1d=NULL fare_mean_7d=7.0 \
             fare_min_7d=7.0 fare_max_1d=NULL fare_last_1h=NULL fare_last_7d=7.0 rider_distinct_7d=1"),
        );
    }
}

#[tokio::test]
async fn a_longer_ttl_keeps_idle_entities_with_empty_windows() {
    let only_1d = vec![feature(None, Aggregation::Count, 24, "count_1d")];
    let rows = run(
        events(&crafted(), false),
        &only_1d,
        9 * 24,
        Cutoffs::At(10 * D),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            "driver=d1 ts=1970-01-11T00:00:00 count_1d=2",
            "driver=d2 ts=1970-01-11T00:00:00 count_1d=0",
            "driver=d3 ts=1970-01-11T00:00:00 count_1d=0",
        ]
    );
}

/// Deterministic pseudo-random events over 12 days, some on day boundaries exactly.
fn random_events() -> RecordBatch {
    let mut x: u64 = 42;
    let mut rows = Vec::new();
    let drivers = ["d1", "d2", "d3", "d4"];
    let riders = ["a", "b", "c"];
    for i in 0..400 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let t = if i % 50 == 0 {
            ((x >> 33) % 12) as i64 * D
        } else {
            ((x >> 20) % (12 * D as u64)) as i64
        };
        rows.push((
            drivers[(x % 4) as usize],
            D + t,
            ((x >> 7) % 100) as f64,
            riders[((x >> 11) % 3) as usize],
        ));
    }
    events(&rows, false)
}

/// The grid's rows, and whether its query pre-aggregated the events into tiles.
async fn grid(batch: RecordBatch, features: &[Feature], horizon_h: u64) -> (Vec<String>, bool) {
    let entities = vec!["driver".to_string()];
    let schema = batch.schema();
    let q = ViewQuery {
        table: "events/trips",
        entities: &entities,
        timestamp: "ts",
        timestamp_type: schema.field(1).data_type(),
        features,
        horizon: Duration::from_secs(horizon_h * 3600),
        schema: Some(&schema),
    };
    let tiled = view_sql(&q, Cutoffs::Every(D))
        .unwrap()
        .contains("__spine_tile");
    (
        run(batch, features, horizon_h, Cutoffs::Every(D)).await,
        tiled,
    )
}

#[tokio::test]
async fn a_grid_of_snapshots_equals_one_query_per_cutoff() {
    let batch = random_events();
    // Not tiled (last and distinct), then tiled: windows that start inside a day (1h, 36h) and a
    // horizon that does too.
    let tiled = vec![
        feature(None, Aggregation::Count, 1, "count_1h"),
        feature(None, Aggregation::Count, 36, "count_36h"),
        feature(Some("fare"), Aggregation::Count, 24, "fare_count_1d"),
        feature(Some("fare"), Aggregation::Sum, 1, "fare_sum_1h"),
        feature(Some("fare"), Aggregation::Sum, 36, "fare_sum_36h"),
        feature(Some("fare"), Aggregation::Mean, 168, "fare_mean_7d"),
        feature(Some("fare"), Aggregation::Min, 36, "fare_min_36h"),
        feature(Some("rider"), Aggregation::Max, 24, "rider_max_1d"),
    ];
    for (features, horizon_h, tiles) in [(features(), 168, false), (tiled, 200, true)] {
        let (grid, tiled) = grid(batch.clone(), &features, horizon_h).await;
        assert_eq!(tiled, tiles);
        let mut per_cutoff = Vec::new();
        // Events fall on days 1 to 12 (1970-01-02 to 01-13): cutoffs from the end of the first
        // through the end of the newest event's day; the grid stops there too.
        for day in 2..=13 {
            per_cutoff.extend(run(batch.clone(), &features, horizon_h, Cutoffs::At(day * D)).await);
        }
        per_cutoff.sort();
        assert!(grid.len() > 40, "{}", grid.len());
        assert_eq!(grid, per_cutoff);
    }
}

#[tokio::test]
async fn a_timestamp_that_is_not_one_is_refused() {
    let entities = vec!["driver".to_string()];
    let q = ViewQuery {
        table: "t",
        entities: &entities,
        timestamp: "ts",
        timestamp_type: &DataType::Utf8,
        features: &features(),
        horizon: Duration::from_secs(3600),
        schema: None,
    };
    let e = view_sql(&q, Cutoffs::At(0)).unwrap_err();
    assert!(e.contains("'t'.ts is Utf8, not a timestamp"), "{e}");
    let _ = Int64Array::from(vec![1]);
}
