//! An eval's gate: checks of each new eval version, run after its commit and before it is published
//! (the engine's write-audit-publish, through [`Audits`]). A failed gate holds the version back:
//! everything downstream keeps reading the last passing one, and `assets publish --reason` is the
//! audited override.
//!
//! ```yaml
//! gate:
//!   pass_rate: 0.9            # at least (cases' samples passing every scorer)
//!   mean_score: 0.8           # at least
//!   cost_per_case: 0.01       # at most
//!   p95_latency_ms: 2000      # at most
//!   must_pass: [c17, c42]     # every sample of these cases passes
//!   regression: {margin: 0.05, confidence: 0.95, metric: score}   # vs the published version
//!   slices: {column: category, margin: 0.1}                      # per slice, Bonferroni-corrected
//!   severity: error           # or warn: recorded only
//! ```
//!
//! The regression check pairs the candidate's cases with the published version's (the baseline) by
//! case id and decides pass, regression or inconclusive ([`crate::stats`]); its verdict, interval and
//! sample sizes are recorded with the check.

use crate::stats::{compare, Settings, Verdict};
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use serde_json::{json, Value};
use spine_engine::kinds::{AuditResult, Audits};
use spine_schemas::events::CheckSeverity;
use std::collections::BTreeMap;

/// The paired regression check.
#[derive(Debug, Clone)]
pub struct Regression {
    /// The regression that matters, in mean score.
    pub margin: f64,
    /// One-sided confidence.
    pub confidence: f64,
    /// `score` (mean of the scorers) or `passed` (0/1).
    pub metric: String,
    /// Bootstrap resamples.
    pub resamples: usize,
}

/// Per-slice regression checks.
#[derive(Debug, Clone)]
pub struct Slices {
    /// The slice column (one of the eval's `slices`).
    pub column: String,
    /// The regression that matters within a slice.
    pub margin: f64,
}

/// A validated gate.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    /// Minimum pass rate.
    pub pass_rate: Option<f64>,
    /// Minimum mean score.
    pub mean_score: Option<f64>,
    /// Maximum cost per case.
    pub cost_per_case: Option<f64>,
    /// Maximum 95th-percentile latency.
    pub p95_latency_ms: Option<f64>,
    /// Cases that must pass.
    pub must_pass: Vec<String>,
    /// The regression check.
    pub regression: Option<Regression>,
    /// Per-slice checks.
    pub slices: Option<Slices>,
    /// What a failure does.
    pub severity: CheckSeverity,
}

impl GateConfig {
    /// Parses `gate:`; the error is a sentence.
    pub fn parse(v: &Value) -> Result<Self, String> {
        let o = v.as_object().ok_or("write a mapping")?;
        let num = |o: &serde_json::Map<String, Value>, k: &str| -> Result<Option<f64>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x.as_f64().map(Some).ok_or(format!("`{k}` is not a number")),
            }
        };
        let mut g = GateConfig {
            pass_rate: num(o, "pass_rate")?.or(num(o, "accuracy")?),
            mean_score: num(o, "mean_score")?,
            cost_per_case: num(o, "cost_per_case")?,
            p95_latency_ms: num(o, "p95_latency_ms")?,
            ..Default::default()
        };
        for k in o.keys() {
            if ![
                "pass_rate",
                "accuracy",
                "mean_score",
                "cost_per_case",
                "p95_latency_ms",
                "must_pass",
                "regression",
                "slices",
                "severity",
            ]
            .contains(&k.as_str())
            {
                return Err(format!("unknown field `{k}`"));
            }
        }
        if let Some(m) = o.get("must_pass") {
            g.must_pass = serde_json::from_value(m.clone())
                .map_err(|_| "`must_pass` is a list of case ids")?;
        }
        g.severity = match o.get("severity").and_then(Value::as_str) {
            None | Some("error") => CheckSeverity::Error,
            Some("warn") => CheckSeverity::Warn,
            Some(s) => return Err(format!("severity '{s}' is not error or warn")),
        };
        let margin = |o: &serde_json::Map<String, Value>| -> Result<f64, String> {
            let m = num(o, "margin")?.ok_or("`margin` is required (e.g. 0.05)")?;
            if m > 0.0 && m < 1.0 {
                Ok(m)
            } else {
                Err(format!("margin {m} is not between 0 and 1"))
            }
        };
        if let Some(r) = o.get("regression") {
            let r = r
                .as_object()
                .ok_or("`regression` is a mapping: {margin: 0.05}")?;
            let confidence = num(r, "confidence")?.unwrap_or(0.95);
            if !(0.5..1.0).contains(&confidence) {
                return Err(format!("confidence {confidence} is not in [0.5, 1)"));
            }
            let metric = r.get("metric").and_then(Value::as_str).unwrap_or("score");
            if metric != "score" && metric != "passed" {
                return Err(format!("metric '{metric}' is not score or passed"));
            }
            g.regression = Some(Regression {
                margin: margin(r)?,
                confidence,
                metric: metric.to_string(),
                resamples: num(r, "resamples")?
                    .unwrap_or(2000.0)
                    .clamp(100.0, 100_000.0) as usize,
            });
        }
        if let Some(s) = o.get("slices") {
            let s = s
                .as_object()
                .ok_or("`slices` is a mapping: {column, margin}")?;
            let column = s
                .get("column")
                .and_then(Value::as_str)
                .ok_or("`slices` needs a `column`")?;
            g.slices = Some(Slices {
                column: column.to_string(),
                margin: margin(s)?,
            });
            if g.regression.is_none() {
                return Err("`slices` compares with the baseline: add `regression:` too".into());
            }
        }
        Ok(g)
    }
}

/// One eval row, as the gate reads it.
struct Row {
    case: String,
    score: f64,
    passed: bool,
    latency: f64,
    cost: f64,
    slice: Option<String>,
}

async fn rows(ctx: &SessionContext, table: &str, slice: Option<&str>) -> Result<Vec<Row>, String> {
    let slice_col =
        slice.map(|s| format!(", CAST(\"{}\" AS VARCHAR) AS slice", s.replace('"', "\"\"")));
    let sql = format!(
        "SELECT CAST(case_id AS VARCHAR) AS case_id, score, passed, latency_ms, cost{} FROM {table}",
        slice_col.unwrap_or_default()
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| e.strip_backtrace())?
        .collect()
        .await
        .map_err(|e| e.strip_backtrace())?;
    let values: Vec<Value> = spine_engine::kinds::rows_as_json(&batches)?
        .into_iter()
        .map(Value::Object)
        .collect();
    Ok(values
        .iter()
        .map(|v| Row {
            case: v["case_id"].as_str().unwrap_or_default().to_string(),
            score: v["score"].as_f64().unwrap_or(0.0),
            passed: v["passed"].as_bool().unwrap_or(false),
            latency: v["latency_ms"].as_f64().unwrap_or(0.0),
            cost: v["cost"].as_f64().unwrap_or(0.0),
            slice: v["slice"].as_str().map(str::to_string),
        })
        .collect())
}

/// Per case: (mean of the metric, samples, every value 0 or 1, slice).
fn per_case(rows: &[Row], metric: &str) -> PerCase {
    let mut out = PerCase::new();
    for r in rows {
        let v = if metric == "passed" {
            f64::from(u8::from(r.passed))
        } else {
            r.score
        };
        let e = out
            .entry(r.case.clone())
            .or_insert((0.0, 0, true, r.slice.clone()));
        e.0 += v;
        e.1 += 1;
        e.2 &= v == 0.0 || v == 1.0;
    }
    for e in out.values_mut() {
        e.0 /= e.1 as f64;
    }
    out
}

type PerCase = BTreeMap<String, (f64, usize, bool, Option<String>)>;

/// The candidate's and the baseline's per-case values, computed once for the regression check and
/// the slices.
struct Paired {
    cand: PerCase,
    old: PerCase,
}

impl Paired {
    fn new(this: &[Row], base: &[Row], metric: &str) -> Self {
        Paired {
            cand: per_case(this, metric),
            old: per_case(base, metric),
        }
    }

    /// The (candidate, baseline) values of `cases`, and whether every one is a single 0 or 1.
    fn pairs(&self, cases: &[&String]) -> (Vec<(f64, f64)>, bool) {
        let (cand, old) = (&self.cand, &self.old);
        let pairs = cases.iter().map(|k| (cand[*k].0, old[*k].0)).collect();
        let binary = cases
            .iter()
            .all(|k| cand[*k].1 == 1 && old[*k].1 == 1 && cand[*k].2 && old[*k].2);
        (pairs, binary)
    }
}

fn seed(cases: &[&String]) -> u64 {
    let text: Vec<&str> = cases.iter().map(|c| c.as_str()).collect();
    xxhash_rust::xxh3::xxh3_64(text.join("\u{1f}").as_bytes())
}

impl GateConfig {
    fn result(&self, name: &str, passed: bool, message: String, details: Value) -> AuditResult {
        AuditResult {
            name: name.to_string(),
            passed,
            severity: self.severity,
            message,
            details,
        }
    }

    fn thresholds(&self, rows: &[Row]) -> Option<AuditResult> {
        if self.pass_rate.is_none()
            && self.mean_score.is_none()
            && self.cost_per_case.is_none()
            && self.p95_latency_ms.is_none()
        {
            return None;
        }
        let n = rows.len().max(1) as f64;
        let cases = rows
            .iter()
            .map(|r| &r.case)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            .max(1);
        let pass_rate = rows.iter().filter(|r| r.passed).count() as f64 / n;
        let mean_score = rows.iter().map(|r| r.score).sum::<f64>() / n;
        let cost = rows.iter().map(|r| r.cost).sum::<f64>() / cases as f64;
        let mut lat: Vec<f64> = rows.iter().map(|r| r.latency).collect();
        lat.sort_by(f64::total_cmp);
        let p95 = lat
            .get(((lat.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0);
        let mut failed = Vec::new();
        if let Some(m) = self.pass_rate.filter(|m| pass_rate < *m) {
            failed.push(format!("pass rate {pass_rate:.3} < {m}"));
        }
        if let Some(m) = self.mean_score.filter(|m| mean_score < *m) {
            failed.push(format!("mean score {mean_score:.3} < {m}"));
        }
        if let Some(m) = self.cost_per_case.filter(|m| cost > *m) {
            failed.push(format!("cost per case {cost:.5} > {m}"));
        }
        if let Some(m) = self.p95_latency_ms.filter(|m| p95 > *m) {
            failed.push(format!("p95 latency {p95:.0} ms > {m} ms"));
        }
        let details = json!({"pass_rate": pass_rate, "mean_score": mean_score, "cost_per_case": cost, "p95_latency_ms": p95, "rows": rows.len(), "cases": cases});
        Some(if failed.is_empty() {
            self.result("gate_thresholds", true, format!("pass rate {pass_rate:.3}, mean score {mean_score:.3}, cost per case {cost:.5}, p95 latency {p95:.0} ms"), details)
        } else {
            self.result("gate_thresholds", false, failed.join("; "), details)
        })
    }

    fn must_pass(&self, rows: &[Row]) -> Option<AuditResult> {
        if self.must_pass.is_empty() {
            return None;
        }
        let failing: Vec<&String> = self
            .must_pass
            .iter()
            .filter(|c| {
                let mine: Vec<&Row> = rows.iter().filter(|r| &r.case == *c).collect();
                mine.is_empty() || mine.iter().any(|r| !r.passed)
            })
            .collect();
        let details = json!({"cases": self.must_pass, "failing": failing});
        Some(if failing.is_empty() {
            self.result(
                "gate_must_pass",
                true,
                format!("all {} must-pass cases pass", self.must_pass.len()),
                details,
            )
        } else {
            let names: Vec<&str> = failing.iter().map(|s| s.as_str()).collect();
            self.result(
                "gate_must_pass",
                false,
                format!("must-pass cases failing or missing: {}", names.join(", ")),
                details,
            )
        })
    }

    fn regression(&self, r: &Regression, paired: Option<&Paired>) -> AuditResult {
        let Some(paired) = paired else {
            return self.result(
                "gate_regression",
                true,
                "no published baseline yet: nothing to compare with".into(),
                json!({"verdict": "no_baseline"}),
            );
        };
        let (cand, old) = (&paired.cand, &paired.old);
        let shared: Vec<&String> = cand.keys().filter(|k| old.contains_key(*k)).collect();
        let (pairs, binary) = paired.pairs(&shared);
        let settings = Settings {
            margin: r.margin,
            confidence: r.confidence,
            power: 0.8,
            resamples: r.resamples,
        };
        let c = compare(&pairs, binary, &settings, seed(&shared));
        let pct = (r.confidence * 100.0).round();
        let message = match c.verdict {
            Verdict::Pass => format!(
                "pass: mean difference {:+.3} ({pct}% lower bound {:+.3} ≥ −{}) over {} paired cases",
                c.mean_diff, c.lower, r.margin, c.n
            ),
            Verdict::Regression => format!(
                "regression: mean difference {:+.3} ({pct}% bounds {:+.3} to {:+.3}; margin {}) over {} paired cases{}",
                c.mean_diff, c.lower, c.upper, r.margin, c.n,
                c.newly_failing.map(|b| format!(", {b} newly failing, {} newly passing", c.newly_passing.unwrap_or(0))).unwrap_or_default()
            ),
            Verdict::Inconclusive => format!(
                "inconclusive: {} paired cases; about {} are needed to detect a regression of {} at {pct}% confidence and 80% power (mean difference {:+.3}, lower bound {:+.3})",
                c.n, c.needed, r.margin, c.mean_diff, c.lower
            ),
        };
        let mut details = serde_json::to_value(&c).unwrap_or(Value::Null);
        details["margin"] = json!(r.margin);
        details["confidence"] = json!(r.confidence);
        details["metric"] = json!(r.metric);
        details["candidate_cases"] = json!(cand.len());
        details["baseline_cases"] = json!(old.len());
        self.result(
            "gate_regression",
            c.verdict == Verdict::Pass,
            message,
            details,
        )
    }

    fn slices(&self, s: &Slices, r: &Regression, paired: Option<&Paired>) -> Option<AuditResult> {
        let paired = paired?;
        let (cand, old) = (&paired.cand, &paired.old);
        let mut by: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for (k, v) in cand {
            if old.contains_key(k) {
                by.entry(v.3.clone().unwrap_or_default())
                    .or_default()
                    .push(k);
            }
        }
        let k = by.len().max(1) as f64;
        let settings = Settings {
            margin: s.margin,
            confidence: 1.0 - (1.0 - r.confidence) / k,
            power: 0.8,
            resamples: r.resamples,
        };
        let mut out = serde_json::Map::new();
        let mut regressed = Vec::new();
        for (slice, cases) in &by {
            let (pairs, binary) = paired.pairs(cases);
            let c = compare(&pairs, binary, &settings, seed(cases));
            if c.verdict == Verdict::Regression {
                regressed.push(format!("{slice} ({:+.3})", c.mean_diff));
            }
            out.insert(
                slice.clone(),
                serde_json::to_value(&c).unwrap_or(Value::Null),
            );
        }
        let details = json!({"column": s.column, "margin": s.margin, "confidence_per_slice": settings.confidence, "slices": out});
        Some(if regressed.is_empty() {
            self.result(
                "gate_slices",
                true,
                format!(
                    "no slice of '{}' regressed beyond {} ({} slices, Bonferroni-corrected)",
                    s.column,
                    s.margin,
                    by.len()
                ),
                details,
            )
        } else {
            self.result(
                "gate_slices",
                false,
                format!(
                    "slices of '{}' regressed beyond {}: {}",
                    s.column,
                    s.margin,
                    regressed.join(", ")
                ),
                details,
            )
        })
    }
}

#[async_trait]
impl Audits for GateConfig {
    async fn audit(&self, ctx: &SessionContext, has_baseline: bool) -> Vec<AuditResult> {
        let slice = self.slices.as_ref().map(|s| s.column.as_str());
        let this = match rows(ctx, "this", slice).await {
            Ok(r) => r,
            Err(e) => {
                return vec![self.result(
                    "gate",
                    false,
                    format!("cannot read the eval's rows: {e}"),
                    Value::Null,
                )]
            }
        };
        let mut out: Vec<AuditResult> = Vec::new();
        out.extend(self.thresholds(&this));
        out.extend(self.must_pass(&this));
        let Some(r) = &self.regression else {
            return out;
        };
        let paired = if has_baseline {
            // A baseline from before a slice column existed is compared without slices.
            let base = match rows(ctx, "baseline", slice).await {
                Ok(b) => Ok(b),
                Err(_) => rows(ctx, "baseline", None).await,
            };
            match base {
                Ok(base) => Some(Paired::new(&this, &base, &r.metric)),
                // An unreadable baseline is not the absence of one: the comparison fails.
                Err(e) => {
                    out.push(self.result(
                        "gate_regression",
                        false,
                        format!("cannot read the published baseline's rows: {e}"),
                        Value::Null,
                    ));
                    return out;
                }
            }
        } else {
            None
        };
        out.push(self.regression(r, paired.as_ref()));
        if let Some(s) = &self.slices {
            out.extend(self.slices(s, r, paired.as_ref()));
        }
        out
    }
}
