//! Lineage one materialization at a time: a materialization by id, who read it (from the upstream
//! reads recorded with each materialization), and the column lineage of each asset's latest one.

use super::*;
use spine_engine::column_lineage::{ColumnSource, How, OutputColumn};

/// Records `m` (its sequence number taken by a step start) in run `r`; its id.
async fn commit(store: &Arc<dyn RunStore>, r: &RunId, mut m: NewMaterialization) -> i64 {
    let key = m.step_key();
    let started = store
        .start_step(
            r,
            &key,
            1,
            NewEvent::new(r, None, EventKind::StepStarted, "info", "x"),
        )
        .await
        .unwrap();
    m.seq = started.seq;
    let outcome = StepOutcome {
        status: StepStatus::Succeeded,
        error: None,
        failure_class: None,
        reason: None,
        materialization: Some(m),
        events: vec![],
    };
    store.finish_step(r, &key, outcome).await.unwrap().unwrap()
}

fn lineage(column: &str, from: &AssetKey, upstream: &str) -> OutputColumn {
    OutputColumn {
        column: column.into(),
        sources: vec![ColumnSource {
            asset: from.clone(),
            column: upstream.into(),
            how: How::Identity,
        }],
    }
}

pub async fn readers_and_column_lineage(store: Arc<dyn RunStore>) {
    let (up, down, other) = (
        AssetKey::parse("raw/orders").unwrap(),
        AssetKey::parse("sales/orders").unwrap(),
        AssetKey::parse("sales/other").unwrap(),
    );
    let r = RunId::new();
    store
        .create_run(
            &run(&r),
            &[step(&r, &up, 0), step(&r, &down, 1), step(&r, &other, 2)],
        )
        .await
        .unwrap();
    let mut m = mat(&r, &up, 0, 0);
    m.upstream = vec![];
    let u = commit(&store, &r, m).await;
    let got = store.materialization(u).await.unwrap().unwrap();
    assert_eq!(
        (
            got.id,
            &got.m.asset_key,
            got.m.delta_version,
            got.m.row_count
        ),
        (u, &up, 0, 7)
    );
    assert_eq!(got.m.metadata, serde_json::json!({"k": 1}));
    assert!(store.materialization(u + 1000).await.unwrap().is_none());
    assert!(store.readers(&up, u).await.unwrap().is_empty());

    let read_up = |id| UpstreamRead {
        key: up.clone(),
        partition: None,
        materialization_id: Some(id),
        delta_version: Some(0),
    };
    let mut d = mat(&r, &down, 0, 0);
    d.upstream = vec![read_up(u)];
    d.columns = vec![
        lineage("id", &up, "order_id"),
        lineage("amount", &up, "amount"),
    ];
    let d1 = commit(&store, &r, d.clone()).await;
    let mut o = mat(&r, &other, 0, 0);
    o.upstream = vec![read_up(u)];
    let o1 = commit(&store, &r, o).await;
    let readers: Vec<i64> = store
        .readers(&up, u)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(readers, vec![d1, o1], "oldest first");
    assert_eq!(
        store.materialization(d1).await.unwrap().unwrap().m.upstream,
        vec![read_up(u)]
    );

    // Column lineage: each asset's latest materialization that recorded one, columns in order.
    let cols = store.latest_column_lineage().await.unwrap();
    assert_eq!(cols.len(), 1, "{cols:?}");
    assert_eq!(cols[&down], d.columns);
    // A newer one with other columns replaces it; one without lineage does not.
    let r2 = RunId::new();
    store
        .create_run(&run(&r2), &[step(&r2, &down, 0)])
        .await
        .unwrap();
    let mut d2 = mat(&r2, &down, 0, 1);
    d2.upstream = vec![read_up(u)];
    d2.columns = vec![lineage("id", &up, "order_id")];
    commit(&store, &r2, d2.clone()).await;
    assert_eq!(
        store.latest_column_lineage().await.unwrap()[&down],
        d2.columns
    );
    let r3 = RunId::new();
    store
        .create_run(&run(&r3), &[step(&r3, &down, 0)])
        .await
        .unwrap();
    let mut d3 = mat(&r3, &down, 0, 2);
    d3.upstream = vec![];
    commit(&store, &r3, d3).await;
    assert_eq!(
        store.latest_column_lineage().await.unwrap()[&down],
        d2.columns
    );
    assert_eq!(store.readers(&up, u).await.unwrap().len(), 3);
}
