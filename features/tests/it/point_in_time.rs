//! Point-in-time joins on crafted data where a naive join (each entity's latest feature row) leaks
//! values from after the row's time.

use arrow::array::{Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use spine_features::asof::point_in_time_table;
use spine_features::point_in_time::{point_in_time_join, Entities, FeatureView, PitError};
use std::sync::Arc;
use std::time::Duration;

const H: i64 = 3_600_000;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn register(ctx: &SessionContext, name: &str, batch: RecordBatch) {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table(name, Arc::new(table)).unwrap();
}

/// Entity rows: (driver, ts hour, label).
fn entities(rows: &[(&str, i64, i64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("driver", DataType::Utf8, false),
        Field::new("ts", ts(), false),
        Field::new("label", DataType::Int64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1 * H),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

/// Feature rows: (driver, event ts in minutes, created, rate).
fn features(rows: &[(&str, i64, i64, f64)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("driver", DataType::Utf8, false),
        Field::new("event_ts", ts(), false),
        Field::new("created", DataType::Int64, false),
        Field::new("rate", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1 * 60_000),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ],
    )
    .unwrap()
}

fn view(table: &str, name: &str, ttl: Option<Duration>) -> FeatureView {
    FeatureView {
        table: table.into(),
        name: name.into(),
        keys: vec!["driver".into()],
        timestamp: "event_ts".into(),
        created: Some("created".into()),
        ttl,
        columns: vec!["rate".into()],
    }
}

fn spine() -> Entities {
    Entities {
        table: "rows".into(),
        timestamp: "ts".into(),
    }
}

/// The joined column `name` as options, in row order.
async fn column(ctx: &SessionContext, views: &[FeatureView], name: &str) -> Vec<Option<f64>> {
    let batches = point_in_time_join(ctx, &spine(), views)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        out.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i))));
    }
    // The as-of operator the kind runs gives exactly what the reference SQL gives.
    let fast = point_in_time_table(ctx, &spine(), views).await.unwrap();
    let col = fast
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let fast: Vec<Option<f64>> = (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect();
    assert_eq!(
        fast, out,
        "the as-of operator differs from the SQL on {name}"
    );
    out
}

#[tokio::test]
async fn each_row_gets_the_newest_feature_known_at_its_time_and_nothing_later() {
    let ctx = SessionContext::new();
    register(
        &ctx,
        "rows",
        entities(&[
            ("d1", 10, 0), // 10:00: 09:00 is known, 11:00 and 13:00 are the future
            ("d1", 12, 1), // 12:00: 11:00 is the newest known
            ("d2", 10, 0), // 09:30 twice: the later created wins; 10:30 is the future
            ("d3", 10, 1), // no feature row at all
            ("d1", 10, 1), // the same entity and time twice: both rows kept
        ]),
    );
    register(
        &ctx,
        "driver_stats",
        features(&[
            ("d1", 9 * 60, 1, 0.1),
            ("d1", 11 * 60, 1, 0.5),
            ("d1", 13 * 60, 1, 0.9),
            ("d2", 9 * 60 + 30, 1, 0.2),
            ("d2", 9 * 60 + 30, 2, 0.3),
            ("d2", 10 * 60 + 30, 1, 0.7),
        ]),
    );
    let got = column(&ctx, &[view("driver_stats", "stats", None)], "stats__rate").await;
    assert_eq!(
        got,
        [Some(0.1), Some(0.5), Some(0.3), None, Some(0.1)],
        "point-in-time values per row"
    );
    // A naive join on the entity alone (its latest row) leaks the future into every d1 and d2 row.
    let naive = ctx
        .sql(
            "SELECT r.driver, f.rate FROM rows r LEFT JOIN (SELECT driver, LAST_VALUE(rate ORDER BY \
             event_ts, created) AS rate FROM driver_stats GROUP BY driver) f ON r.driver = f.driver",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut leaked: Vec<f64> = Vec::new();
    for b in &naive {
        let c = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        leaked.extend((0..c.len()).filter(|i| c.is_valid(*i)).map(|i| c.value(i)));
    }
    assert!(
        leaked.contains(&0.9) && leaked.contains(&0.7),
        "the crafted data makes a naive join leak: {leaked:?}"
    );
    assert!(!got.contains(&Some(0.9)) && !got.contains(&Some(0.7)));
}

#[tokio::test]
async fn a_ttl_drops_features_older_than_it_and_views_join_side_by_side() {
    let ctx = SessionContext::new();
    register(&ctx, "rows", entities(&[("d1", 12, 0), ("d2", 12, 1)]));
    // d1's newest known row is 5 hours old at 12:00; d2's is 1 hour old.
    register(
        &ctx,
        "slow",
        features(&[("d1", 7 * 60, 1, 0.4), ("d2", 11 * 60, 1, 0.6)]),
    );
    register(
        &ctx,
        "fast",
        features(&[("d1", 11 * 60 + 59, 1, 1.5), ("d2", 12 * 60 + 1, 1, 2.5)]),
    );
    let ttl = Some(Duration::from_secs(2 * 3600));
    let views = [view("slow", "slow", ttl), view("fast", "fast", None)];
    assert_eq!(column(&ctx, &views, "slow__rate").await, [None, Some(0.6)]);
    // A feature at exactly the row's time is known; one a minute later is not.
    assert_eq!(column(&ctx, &views, "fast__rate").await, [Some(1.5), None]);
    let no_ttl = [view("slow", "slow", None)];
    assert_eq!(
        column(&ctx, &no_ttl, "slow__rate").await,
        [Some(0.4), Some(0.6)]
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_by_name() {
    let ctx = SessionContext::new();
    register(&ctx, "rows", entities(&[("d1", 12, 0)]));
    register(&ctx, "stats", features(&[("d1", 60, 1, 0.1)]));
    let e = point_in_time_join(&ctx, &spine(), &[]).await.unwrap_err();
    assert!(matches!(e, PitError::Definition(_)), "{e}");
    let twice = [view("stats", "s", None), view("stats", "s", None)];
    let e = point_in_time_join(&ctx, &spine(), &twice)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'s__rate' comes twice"), "{e}");
    let mut keyless = view("stats", "s", None);
    keyless.keys.clear();
    let e = point_in_time_join(&ctx, &spine(), &[keyless])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no entity key"), "{e}");
    let mut missing = view("stats", "s", None);
    missing.columns = vec!["nope".into()];
    let e = point_in_time_join(&ctx, &spine(), &[missing])
        .await
        .unwrap_err();
    assert!(matches!(e, PitError::DataFusion(_)), "{e}");
}

/// `batch` with its `driver` column ("d3") as the number (3) in `to`, if any.
fn int_drivers(batch: RecordBatch, to: Option<DataType>) -> RecordBatch {
    let Some(to) = to else { return batch };
    let i = batch.schema().index_of("driver").unwrap();
    let drivers = batch
        .column(i)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let ints: Int64Array = drivers
        .iter()
        .map(|d| d.map(|d| d[1..].parse::<i64>().unwrap()))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[i] = arrow::compute::cast(&ints, &to).unwrap();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[i] = Field::new("driver", to, false);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[tokio::test]
async fn the_as_of_operator_equals_the_sql_on_random_rows_with_ties() {
    let mut x: u64 = 7;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let drivers = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
    let rows: Vec<(&str, i64, i64)> = (0..400)
        .map(|_| (drivers[next(8) as usize], next(48) as i64, 0))
        .collect();
    // Event times on a coarse grid (many ties), broken by creation times in shuffled order (where
    // both tie the SQL's ranking is arbitrary; the operator takes the view's later row).
    let feats: Vec<(&str, i64, i64, f64)> = (0..1500)
        .map(|i| {
            (
                drivers[next(8) as usize],
                next(48 * 6) as i64 * 10,
                (i * 7919) % 1500,
                i as f64,
            )
        })
        .collect();
    // String keys (hashed in Arrow's row format) and integer keys (hashed as themselves; the
    // view's Int64 compared with the entities' Int32).
    let keyed = [(None, None), (Some(DataType::Int32), Some(DataType::Int64))];
    for (ttl, (entity_key, view_key)) in [None, Some(Duration::from_secs(3 * 3600))]
        .into_iter()
        .flat_map(|t| keyed.clone().map(|k| (t, k)))
    {
        let ctx = SessionContext::new();
        register(&ctx, "rows", int_drivers(entities(&rows), entity_key));
        register(&ctx, "stats", int_drivers(features(&feats), view_key));
        let got = column(&ctx, &[view("stats", "s", ttl)], "s__rate").await;
        assert_eq!(got.len(), 400);
        assert!(got.iter().filter(|v| v.is_some()).count() > 100, "{got:?}");
    }
}
