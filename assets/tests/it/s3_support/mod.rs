//! What the S3 tests share: the server started by `scripts/services.sh` (moto; its endpoint in
//! SPINE_TEST_S3_ENDPOINT), a fresh bucket per test, a project configuration pointing at it, a reader
//! with delta-rs' Python binding, and a TCP proxy that can take the server away or throttle it.
#![allow(dead_code)]

use std::process::Command;

pub mod proxy;

/// The server's endpoint, or None outside CI when no server was started (then the test says so).
pub fn server() -> Option<String> {
    match std::env::var("SPINE_TEST_S3_ENDPOINT") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("SPINE_TEST_S3_ENDPOINT is not set: .ci/run starts the S3 server with scripts/services.sh")
        }
        _ => {
            eprintln!("skipped: no S3 server (run `eval \"$(scripts/services.sh)\"` first)");
            None
        }
    }
}

/// A new bucket on the server (path-style `PUT /bucket`, which moto accepts unsigned).
pub fn bucket(endpoint: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("spine-test-{}-{nanos}", std::process::id());
    let out = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{name}")])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "cannot create bucket {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

pub fn toml(bucket: &str) -> String {
    format!(
        "[project]\nname = \"s3test\"\n[warehouse]\nurl = \"s3://{bucket}/wh\"\n[warehouse.options]\n\
         aws_endpoint = \"${{env:SPINE_TEST_S3_ENDPOINT}}\"\naws_region = \"us-east-1\"\n\
         aws_access_key_id = \"test\"\naws_secret_access_key = \"test\"\naws_allow_http = \"true\"\n"
    )
}

pub const READ: &str = r#"
import json, os, sys
from deltalake import DeltaTable
endpoint, uri = sys.argv[1], sys.argv[2]
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_ALLOW_HTTP": "true"}
t = DeltaTable(uri, storage_options=opts)
rows = t.to_pyarrow_table()
sys.stdout.write(json.dumps({"version": t.version(), "rows": rows.num_rows,
                             "columns": sorted(rows.column_names)}))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;
