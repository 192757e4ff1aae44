//! Opening a project's warehouse ([`Warehouse::for_project`]: its URL, object-store options and
//! fsync, one place for the engine and `assets check`), and S3 credentials checked before the first
//! request: a warehouse on S3 with no credentials configured anywhere would otherwise fail only when
//! a step writes, after a wait for an instance metadata service that exists only on cloud machines.

use super::Warehouse;
use crate::error::WarehouseError;
use crate::project::ProjectConfig;
use std::collections::HashMap;
use url::Url;

impl Warehouse {
    /// The warehouse `config` names, with a warning to show when it is on S3 with no credentials
    /// configured ([`missing_s3_credentials`]).
    pub fn for_project(
        config: &ProjectConfig,
    ) -> Result<(Warehouse, Option<String>), WarehouseError> {
        let options: HashMap<String, String> =
            config.warehouse_options.clone().into_iter().collect();
        let warning = missing_s3_credentials(&config.warehouse_url, &options);
        let warehouse = Warehouse::new(config.warehouse_url.clone(), options)?
            .with_fsync(config.warehouse_fsync);
        Ok((warehouse, warning))
    }
}

/// Options (in `[warehouse.options]`, any case) and environment variables that supply S3
/// credentials, or say that requests go unsigned.
const OPTIONS: [&str; 8] = [
    "aws_access_key_id",
    "access_key_id",
    "aws_skip_signature",
    "skip_signature",
    "aws_web_identity_token_file",
    "aws_container_credentials_relative_uri",
    "aws_container_credentials_full_uri",
    "aws_profile",
];
const ENV: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// A warning when the warehouse is on S3 and nothing supplies credentials but a cloud machine's
/// instance role (the metadata service at 169.254.169.254): not in `options`, the environment, or
/// `~/.aws/credentials`. `None` for a local warehouse, or when some source is configured.
pub fn missing_s3_credentials(root: &Url, options: &HashMap<String, String>) -> Option<String> {
    if !matches!(root.scheme(), "s3" | "s3a") {
        return None;
    }
    let configured = options
        .keys()
        .any(|k| OPTIONS.contains(&k.to_ascii_lowercase().as_str()))
        || ENV.iter().any(|v| std::env::var_os(v).is_some())
        || std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .is_some_and(|h| h.join(".aws/credentials").is_file());
    (!configured).then(|| {
        format!(
            "the warehouse {root} is on S3 but no credentials are configured: set aws_access_key_id and \
             aws_secret_access_key in [warehouse.options] (values may use ${{env:NAME}}), or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; only a cloud machine's \
             instance role can supply them otherwise"
        )
    })
}

#[async_trait::async_trait]
impl crate::kinds::DataFiles for Warehouse {
    async fn data_files(
        &self,
        key: &crate::key::AssetKey,
        version: i64,
    ) -> Result<Vec<Url>, String> {
        Warehouse::data_files(self, key, version)
            .await
            .map_err(|e| e.to_string())
    }
}
