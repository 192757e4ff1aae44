//! The warehouse on a real S3-compatible server (moto's, started by `scripts/services.sh`, which
//! `.ci/run` calls; its endpoint in SPINE_TEST_S3_ENDPOINT): whole tables and daily partitions are
//! written as Delta tables in the bucket, read back by `assets sql`, found fresh on a second run, and
//! read by delta-rs' Python binding; nothing is written to the local disk.

use crate::common::*;
use crate::s3_support::*;
use std::process::Command;

#[test]
fn tables_and_partitions_live_in_the_bucket_and_other_tools_read_them() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    let p = Project::new(&[
        ("spine.toml", &toml(&b)),
        (
            "assets/orders.yaml",
            "key: raw/orders\nkind: sql\nquery: SELECT value AS id, value % 3 AS customer, DATE '2026-01-01' + CAST(value % 3 AS INT) AS day FROM generate_series(1, 3000)\n",
        ),
        (
            "assets/daily.yaml",
            "key: marts/daily\nkind: sql\npartitions: {daily: {start: 2026-01-01, end: 2026-01-04}}\nquery: SELECT COUNT(*) AS n FROM raw.orders WHERE day = DATE '{{ partition_key }}'\n",
        ),
        (
            "assets/total.yaml",
            "key: marts/total\nkind: sql\nquery: SELECT COUNT(*) AS n, SUM(customer) AS c FROM raw.orders\n",
        ),
    ]);
    let env = [("SPINE_TEST_S3_ENDPOINT", endpoint.clone())];
    let run = |args: &[&str]| run_in_env(p.path(), args, &env);
    let v = run(&["materialize", "--json"]).ok().json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 5, "{v}");
    assert!(!p.path().join("warehouse").exists(), "nothing local");
    let rows = run(&["sql", "--json", "SELECT n, c FROM marts.total"])
        .ok()
        .json();
    assert_eq!(rows, serde_json::json!([{"n": 3000, "c": 3000}]));
    let rows = run(&[
        "sql",
        "--json",
        "SELECT partition_key AS day, n FROM marts.daily ORDER BY day",
    ])
    .ok()
    .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"day": "2026-01-01", "n": 1000},
            {"day": "2026-01-02", "n": 1000},
            {"day": "2026-01-03", "n": 1000},
        ])
    );
    // Fresh on a second run: nothing recomputes.
    let v = run(&["materialize", "--json"]).ok().json();
    assert!(
        step_statuses(&v).iter().all(|(_, s)| s == "up_to_date"),
        "{v}"
    );
    // One partition again: a new Delta version replacing only that day's rows.
    run(&[
        "materialize",
        "marts/daily",
        "--partition",
        "2026-01-02",
        "--force",
    ])
    .ok();
    let read = python_json(
        READ,
        &[endpoint.clone(), format!("s3://{b}/wh/marts/daily")],
    );
    assert_eq!(read["rows"], 3, "{read}");
    assert_eq!(read["columns"], serde_json::json!(["n", "partition_key"]));
    assert!(read["version"].as_i64().unwrap() >= 1, "{read}");
    let read = python_json(READ, &[endpoint.clone(), format!("s3://{b}/wh/raw/orders")]);
    assert_eq!(read["rows"], 3000, "{read}");
    // `doctor` checks the tables in the bucket against the run store.
    run(&["doctor"]).ok();
    // Another project, with a local warehouse, reads one of these tables as a Delta source on S3.
    let q = Project::new(&[
        (
            "assets/orders.yaml",
            &format!(
                "key: ext/orders\nkind: source\ndelta: s3://{b}/wh/raw/orders\nstorage_options: {{aws_endpoint: \"{endpoint}\", aws_region: us-east-1, aws_access_key_id: test, aws_secret_access_key: test, aws_allow_http: \"true\"}}\n"
            ),
        ),
        (
            "assets/n.yaml",
            "key: n\nkind: sql\nquery: SELECT COUNT(*) AS n FROM ext.orders\n",
        ),
    ]);
    let v = q.run(&["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"], serde_json::json!([]), "{v}");
    q.run(&["materialize"]).ok();
    let rows = q.run(&["sql", "--json", "SELECT n FROM n"]).ok().json();
    assert_eq!(rows, serde_json::json!([{"n": 3000}]));
}

/// Two projects (two run stores) write the same table in one bucket at once, several times: each
/// commit either lands or fails cleanly, and the log stays one line of versions every reader agrees on.
#[test]
fn racing_writers_on_one_table_never_fork_the_log() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    let files = |n: u32| {
        vec![
            ("spine.toml".to_string(), toml(&b)),
            (
                "assets/t.yaml".to_string(),
                format!("key: shared\nkind: sql\nquery: SELECT value AS id, {n} AS writer FROM generate_series(1, 2000)\n"),
            ),
        ]
    };
    let projects: Vec<Project> = [1, 2]
        .map(|n| {
            let f = files(n);
            let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            Project::new(&refs)
        })
        .into_iter()
        .collect();
    let env = [("SPINE_TEST_S3_ENDPOINT", endpoint.clone())];
    let mut landed = 0;
    for _ in 0..4 {
        let children: Vec<_> = projects
            .iter()
            .map(|p| {
                let mut c = bin();
                c.current_dir(p.path())
                    .args(["materialize", "--force", "--json"])
                    .env("SPINE_TEST_S3_ENDPOINT", &endpoint)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().expect("spawn")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            match out.status.code() {
                Some(0) => landed += 1,
                // Failed cleanly: a step error naming the commit, not a crash.
                Some(1) => assert!(text.contains("\"status\": \"failed\""), "{text}"),
                other => panic!(
                    "exit {other:?}: {text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
    }
    eprintln!("{landed} of 8 racing runs landed");
    assert!(landed >= 4, "at least one writer lands per round: {landed}");
    // The log is one line: Python reads the latest version with exactly one writer's 2,000 rows, and
    // each project's own record of its last version reads back as that version.
    let read = python_json(READ, &[endpoint.clone(), format!("s3://{b}/wh/shared")]);
    assert_eq!(read["rows"], 2000, "{read}");
    assert!(
        read["version"].as_i64().unwrap() + 1 >= landed as i64,
        "{read}"
    );
    for p in &projects {
        let r = run_in_env(
            p.path(),
            &[
                "sql",
                "--json",
                "SELECT COUNT(*) AS n, COUNT(DISTINCT writer) AS w FROM shared",
            ],
            &env,
        )
        .ok()
        .json();
        assert_eq!(r, serde_json::json!([{"n": 2000, "w": 1}]));
    }
}

/// `curl -X PUT` of `body` as object `key` in `bucket` (moto accepts unsigned path-style requests; a
/// form content type, curl's default for `--data-binary`, would store an empty object).
fn put(endpoint: &str, bucket: &str, key: &str, body: &str) {
    let mut c = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            "@-",
            &format!("{endpoint}/{bucket}/{key}"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    use std::io::Write;
    c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "PUT {key}");
}

/// A source over objects in the bucket (`path: s3://…/*.csv`): observed by size, time and ETag, read in
/// place, re-observed when an object changes, which makes exactly its dependents stale.
#[test]
fn a_source_over_objects_in_a_bucket_tracks_their_etags() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    put(
        &endpoint,
        &b,
        "landing/rates/2026-01.csv",
        "currency,rate\nEUR,1.0\nGBP,2.0\n",
    );
    put(&endpoint, &b, "landing/rates/notes.txt", "not a rate\n");
    put(
        &endpoint,
        &b,
        "landing/rates/old/2025-12.csv",
        "currency,rate\nEUR,9.0\n",
    );
    let p = Project::new(&[
        ("spine.toml", &toml(&b)),
        (
            "assets/rates.yaml",
            &format!("key: raw/rates\nkind: source\npath: s3://{b}/landing/rates/*.csv\n"),
        ),
        (
            "assets/avg.yaml",
            "key: avg_rate\nkind: sql\nquery: SELECT COUNT(*) AS n, AVG(rate) AS rate FROM raw.rates\n",
        ),
        ("assets/one.yaml", "key: one\nkind: sql\nquery: SELECT 1 AS one\n"),
    ]);
    let env = [("SPINE_TEST_S3_ENDPOINT", endpoint.clone())];
    let run = |args: &[&str]| run_in_env(p.path(), args, &env);
    let v = run(&["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"], serde_json::json!([]), "{v}");
    run(&["materialize"]).ok();
    let avg = || {
        run(&["sql", "--json", "SELECT n, rate FROM avg_rate"])
            .ok()
            .json()
    };
    assert_eq!(avg(), serde_json::json!([{"n": 2, "rate": 1.5}]));
    let meta = run(&[
        "sql",
        "--json",
        "SELECT metadata FROM spine.materializations WHERE asset_key = 'raw/rates'",
    ])
    .ok()
    .json();
    let meta: serde_json::Value =
        serde_json::from_str(meta[0]["metadata"].as_str().unwrap()).unwrap();
    let files = meta["observed_files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{meta}");
    assert!(files[0]["etag"].is_string(), "{meta}");
    let v = run(&["observe", "--json"]).ok().json();
    assert_eq!(
        step_statuses(&v),
        [("raw/rates".to_string(), "up_to_date".to_string())]
    );
    // Another object lands: a new observation, exactly the dependent stale.
    put(
        &endpoint,
        &b,
        "landing/rates/2026-02.csv",
        "currency,rate\nJPY,6.0\n",
    );
    let v = run(&["observe", "--json"]).ok().json();
    assert_eq!(
        step_statuses(&v),
        [("raw/rates".to_string(), "succeeded".to_string())]
    );
    assert_eq!(
        states(p.path(), &env, &["avg_rate", "one"]),
        ["stale", "fresh"]
    );
    run(&["materialize"]).ok();
    assert_eq!(avg(), serde_json::json!([{"n": 3, "rate": 3.0}]));
    // No object matches: the observation fails, naming the pattern; what was stored stays.
    p.write(
        "assets/rates.yaml",
        &format!("key: raw/rates\nkind: source\npath: s3://{b}/landing/none/*.csv\n"),
    );
    let r = run(&["observe", "--json"]);
    r.code(1);
    assert!(r.stdout.contains("no object matches"), "{}", r.stdout);
    assert_eq!(avg(), serde_json::json!([{"n": 3, "rate": 3.0}]));
}

/// The same project on the local disk and in the bucket gives the same tables: a chunked backfill of
/// daily partitions, an incremental append over new source files, and a merge with deletes.
#[test]
fn backfills_appends_and_merges_on_s3_match_the_local_warehouse() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    let files = |toml: Option<String>| {
        let mut f = vec![
            (
                "assets/raw.yaml".to_string(),
                "key: raw/events\nkind: source\npath: ../data/*.csv\n".to_string(),
            ),
            (
                "assets/orders.yaml".to_string(),
                "key: raw/orders\nkind: sql\nquery: SELECT value AS id, value % 7 AS amount, DATE '2026-01-01' + CAST(value % 5 AS INT) AS day FROM generate_series(1, 500)\n".to_string(),
            ),
            (
                "assets/daily.yaml".to_string(),
                "key: marts/daily\nkind: sql\npartitions: {daily: {start: 2026-01-01, end: 2026-01-06}}\nquery: SELECT COUNT(*) AS n, SUM(amount) AS amount FROM raw.orders WHERE day = DATE '{{ partition_key }}'\n".to_string(),
            ),
            (
                "assets/appended.yaml".to_string(),
                "key: appended\nkind: sql\nincremental: {strategy: append, watermark: id}\nquery: SELECT id, v FROM raw.events WHERE {{ watermark }} IS NULL OR id > {{ watermark }}\n".to_string(),
            ),
            (
                "assets/merged.yaml".to_string(),
                "key: merged\nkind: sql\nincremental: {strategy: merge, unique_key: k, delete: \"op = 'D'\"}\nquery: SELECT id % 3 AS k, MAX(id) AS id, MAX(v) AS v, MAX(op) AS op FROM raw.events GROUP BY id % 3\n".to_string(),
            ),
            ("data/0.csv".to_string(), "id,v,op\n1,a,U\n2,b,U\n3,c,U\n".to_string()),
        ];
        if let Some(t) = toml {
            f.push(("spine.toml".to_string(), t));
        }
        f
    };
    let project = |f: Vec<(String, String)>| {
        Project::new(
            &f.iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    let (local, remote) = (project(files(None)), project(files(Some(toml(&b)))));
    let env = [("SPINE_TEST_S3_ENDPOINT", endpoint.clone())];
    for p in [&local, &remote] {
        let run = |args: &[&str]| run_in_env(p.path(), args, &env);
        run(&["materialize", "raw/orders", "appended", "merged"]).ok();
        let v = run(&["backfill", "marts/daily", "--per-run", "2", "--json"])
            .ok()
            .json();
        assert_eq!(v["state"], "succeeded", "{v}");
        p.write("data/1.csv", "id,v,op\n4,d,U\n5,e,D\n");
        run(&["materialize", "appended", "merged"]).ok();
    }
    assert!(!remote.path().join("warehouse").exists(), "nothing local");
    for q in [
        "SELECT partition_key, n, amount FROM marts.daily ORDER BY partition_key",
        "SELECT id, v FROM appended ORDER BY id",
        "SELECT k, id, v, op FROM merged ORDER BY k",
        "SELECT asset_key, partition_key, row_count FROM spine.materializations ORDER BY asset_key, partition_key, id",
        // Partitions of one chunk commit side by side (alone or grouped, as timing has it), so only
        // the unpartitioned tables' versions are compared.
        "SELECT asset_key, delta_version FROM spine.materializations WHERE partition_key IS NULL ORDER BY asset_key, id",
    ] {
        let on = |p: &Project| run_in_env(p.path(), &["sql", "--json", q], &env).ok().json();
        let (l, r) = (on(&local), on(&remote));
        assert!(!l.as_array().unwrap().is_empty(), "{q}");
        assert_eq!(l, r, "{q}");
    }
}

/// An S3 warehouse with no credentials configured anywhere (issue 27, defect 11): `check` and every
/// command that opens the warehouse say so before any request, and a step that meets the refusal
/// fails permanently (no retries) with what to set, instead of retrying a metadata-service error.
#[test]
fn missing_s3_credentials_are_named_before_the_first_request_and_are_permanent() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    let home = tempfile::tempdir().unwrap();
    let toml = toml(&b)
        .replace("aws_access_key_id = \"test\"\n", "")
        .replace("aws_secret_access_key = \"test\"\n", "");
    let p = Project::new(&[
        ("spine.toml", &toml),
        (
            "assets/a.yaml",
            "key: a\nkind: sql\nretries: 3\nretry_delay: 1s\nquery: SELECT 1 AS x\n",
        ),
    ]);
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .current_dir(p.path())
            .env_remove("SPINE_STATE_URL")
            .env_remove("SPINE_WAREHOUSE_URL")
            .env_remove("RUST_LOG")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env("HOME", home.path())
            .env("SPINE_TEST_S3_ENDPOINT", &endpoint)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("no credentials are configured") && err.contains("aws_access_key_id"),
        "{err}"
    );
    let (code, out, err) = run(&["materialize", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no credentials are configured"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let step = &v["steps"][0];
    assert_eq!(step["status"], "failed", "{v}");
    assert_eq!(step["attempts"], 1, "permanent: not retried: {v}");
    let error = step["error"].as_str().unwrap();
    assert!(error.contains("S3 credentials"), "{error}");
}
