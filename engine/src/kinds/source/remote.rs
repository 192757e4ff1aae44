//! Source files on an object store: `path: s3://bucket/prefix/*.parquet`. The folder is listed through
//! object_store (credentials and endpoint from the source's `storage_options`, else the warehouse's
//! `[warehouse.options]`, else the standard AWS variables); an observation records each file's size,
//! modification time and ETag, and a dependent step reads exactly those objects, refusing one whose
//! ETag changed since.

use super::ObservedFile;
use crate::error::first_line;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

/// A folder on an object store.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The store's root (`s3://bucket/`), under which DataFusion finds the store.
    root: Url,
    /// The folder inside the bucket.
    prefix: ObjPath,
    store: Arc<dyn ObjectStore>,
}

impl Remote {
    /// The folder `dir` (`s3://bucket/prefix/`) with these store options; no request is made.
    pub fn new(dir: &Url, options: &BTreeMap<String, String>) -> Result<Self, String> {
        if !matches!(dir.scheme(), "s3" | "s3a") {
            return Err(format!(
                "'{dir}': only s3:// object stores are supported (or a local path)"
            ));
        }
        let (store, prefix) = object_store::parse_url_opts(dir, options.iter())
            .map_err(|e| format!("'{dir}': {}", first_line(&e.to_string())))?;
        let mut root = dir.clone();
        root.set_path("/");
        Ok(Remote {
            root,
            prefix,
            store: Arc::from(store),
        })
    }

    /// The objects directly in the folder whose names match `pattern`, sorted by path.
    pub async fn list(&self, pattern: &str) -> Result<Vec<ObservedFile>, String> {
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| {
                format!(
                    "cannot list {}: {}",
                    self.url_of(&self.prefix),
                    first_line(&e.to_string())
                )
            })?;
        let mut out = Vec::new();
        for m in metas {
            let Some(name) = m.location.filename() else {
                continue;
            };
            // Only the folder's own objects, not those of folders below it.
            let direct = m
                .location
                .prefix_match(&self.prefix)
                .is_some_and(|rest| rest.count() == 1);
            if !direct || name.starts_with('.') || !crate::selection::glob_match(pattern, name) {
                continue;
            }
            out.push(ObservedFile {
                path: self.url_of(&m.location),
                size: m.size,
                modified_ms: m.last_modified.timestamp_millis(),
                etag: m.e_tag.clone(),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        if out.is_empty() {
            return Err(format!(
                "no object matches {}/{pattern}",
                self.url_of(&self.prefix).trim_end_matches('/')
            ));
        }
        Ok(out)
    }

    /// An object's size, modification time and ETag now, if it is there.
    pub async fn stamp(&self, url: &str) -> Option<(u64, i64, Option<String>)> {
        let path = Url::parse(url).ok()?;
        let location = ObjPath::parse(path.path().trim_start_matches('/')).ok()?;
        let m = self.store.head(&location).await.ok()?;
        Some((m.size, m.last_modified.timestamp_millis(), m.e_tag))
    }

    /// Lets `ctx` read objects of this store by URL.
    pub fn register(&self, ctx: &datafusion::prelude::SessionContext) {
        ctx.register_object_store(&self.root, self.store.clone());
    }

    fn url_of(&self, location: &ObjPath) -> String {
        format!("{}{}", self.root, location)
    }
}
