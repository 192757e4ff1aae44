//! Dynamic partition sets: keys added at run time, once each, in the order they came.

use super::*;

pub async fn dynamic_partitions(store: Arc<dyn RunStore>) {
    let keys = |ks: &[&str]| {
        ks.iter()
            .map(|k| PartitionKey(k.to_string()))
            .collect::<Vec<_>>()
    };
    assert!(store.dynamic_partitions().await.unwrap().is_empty());
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["zeta", "alpha"]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["alpha", "mid", "mid"]))
            .await
            .unwrap(),
        1,
        "known keys are left as they are"
    );
    assert_eq!(
        store
            .add_dynamic_partitions("regions", &keys(&["eu"]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.add_dynamic_partitions("regions", &[]).await.unwrap(),
        0
    );
    let sets = store.dynamic_partitions().await.unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        sets["customers"],
        keys(&["zeta", "alpha", "mid"]),
        "in the order added"
    );
    assert_eq!(sets["regions"], keys(&["eu"]));
}
