//! Version rewrites of table maintenance: the version to read for a version's rows follows
//! compactions of compactions, per asset.

use super::*;

pub async fn version_rewrites(store: Arc<dyn RunStore>) {
    let (a, b) = (AssetKey::parse("a").unwrap(), AssetKey::parse("b").unwrap());
    assert_eq!(store.read_version(&a, 3).await.unwrap(), 3);
    store.record_version_rewrite(&a, 3, 5).await.unwrap();
    store.record_version_rewrite(&a, 5, 8).await.unwrap();
    store.record_version_rewrite(&a, 4, 6).await.unwrap();
    assert_eq!(
        store.read_version(&a, 3).await.unwrap(),
        8,
        "a rewrite of a rewrite"
    );
    assert_eq!(store.read_version(&a, 5).await.unwrap(), 8);
    assert_eq!(store.read_version(&a, 4).await.unwrap(), 6);
    assert_eq!(store.read_version(&a, 7).await.unwrap(), 7);
    assert_eq!(
        store.read_version(&b, 3).await.unwrap(),
        3,
        "another asset's rewrites"
    );
    // Recording the same rewrite twice is harmless.
    store.record_version_rewrite(&a, 3, 5).await.unwrap();
    assert_eq!(store.read_version(&a, 3).await.unwrap(), 8);
}
