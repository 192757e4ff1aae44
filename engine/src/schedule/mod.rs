//! Schedules: cron-driven requests for runs, defined in YAML under `schedules/` and evaluated by the
//! daemon (`daemon.rs`).
//!
//! ```yaml
//! # schedules/nightly.yaml (one schedule, or `schedules: [...]`)
//! name: nightly_orders
//! cron: "0 2 * * *"            # minute hour day-of-month month day-of-week (or 6 fields with seconds)
//! timezone: Europe/Berlin      # the cron's wall clock (default UTC)
//! select: daily_orders+        # a selection (default: every asset)
//! partition: latest            # each selected time-partitioned asset's latest partition at the tick
//! catch_up: skip               # after downtime: `skip` (run only the latest missed tick) or `all`
//! ```
//!
//! A tick is identified by its schedule and its scheduled time: the daemon records the tick and its
//! queued run in one transaction keyed by both, so a tick is launched at most once however often the
//! daemon restarts.

use chrono::{DateTime, Utc};
use std::str::FromStr;

/// The most ticks one evaluation launches for a schedule that catches up on every missed tick.
pub const MAX_CATCH_UP: usize = 1000;

/// What a tick does after downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Launch only the latest missed tick.
    Skip,
    /// Launch each missed tick, oldest first (at most [`MAX_CATCH_UP`] per evaluation).
    All,
}

/// Which partitions a tick's run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickPartition {
    /// Every partition (`materialize` without `--partition`: fresh ones are skipped).
    All,
    /// Each selected partitioned asset's latest partition that exists at the tick's time.
    Latest,
}

/// A validated schedule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleDef {
    /// Unique name.
    pub name: String,
    /// The cron expression as written.
    pub cron: String,
    /// The timezone of its wall clock.
    pub timezone: String,
    /// The selection its runs cover.
    pub selection: Option<String>,
    /// Which partitions.
    pub partition: TickPartition,
    /// After downtime.
    pub catch_up: CatchUp,
    #[serde(skip)]
    times: Cron,
}

/// A parsed cron expression read on a timezone's wall clock.
#[derive(Debug, Clone)]
pub struct Cron {
    schedule: cron::Schedule,
    tz: chrono_tz::Tz,
}

impl Cron {
    /// Parses 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, on
    /// `timezone` (IANA; default UTC). The error is a sentence saying what to write.
    pub fn parse(cron: &str, timezone: Option<&str>) -> Result<Self, String> {
        let six = match cron.split_whitespace().count() {
            5 => format!("0 {}", cron.trim()),
            6 | 7 => cron.trim().to_string(),
            n => {
                return Err(format!(
                    "cron '{cron}' has {n} fields; write 5 (minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\") or 6 with seconds first"
                ))
            }
        };
        let schedule = cron::Schedule::from_str(&six).map_err(|e| {
            format!("cron '{cron}' is not valid: {e} (e.g. \"0 2 * * *\" is 02:00 every day)")
        })?;
        let timezone = timezone.unwrap_or("UTC");
        let tz = chrono_tz::Tz::from_str(timezone).map_err(|_| {
            format!("unknown timezone '{timezone}' (an IANA name, e.g. Europe/Berlin or UTC)")
        })?;
        Ok(Cron { schedule, tz })
    }

    /// The times after `after` (exclusive) up to `until` (inclusive), oldest first, at most `limit`.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&self.tz))
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= until)
            .take(limit)
            .collect()
    }

    /// The next time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    name: String,
    cron: String,
    timezone: Option<String>,
    select: Option<String>,
    partition: Option<String>,
    catch_up: Option<String>,
}

impl ScheduleDef {
    /// The scheduled times after `after` (exclusive) up to `until` (inclusive), oldest first, at most
    /// `limit`.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.times.ticks_between(after, until, limit)
    }

    /// The next scheduled time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.times.next_after(after)
    }

    /// `t` on the schedule's own wall clock, with its offset (`2026-12-07T02:00:00+01:00`).
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.times.tz).to_rfc3339()
    }

    pub(crate) fn parse(raw: RawSchedule) -> Result<Self, String> {
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "schedule name '{}' must be letters, digits, '_' or '-'",
                raw.name
            ));
        }
        if raw.name == "automation" {
            return Err("the name 'automation' is reserved (the daemon records automation conditions' runs under it)".into());
        }
        let times = Cron::parse(&raw.cron, raw.timezone.as_deref())?;
        let timezone = raw.timezone.unwrap_or_else(|| "UTC".into());
        let partition = match raw.partition.as_deref() {
            None | Some("all") => TickPartition::All,
            Some("latest") => TickPartition::Latest,
            Some(other) => return Err(format!("partition '{other}' is not `latest` or `all`")),
        };
        let catch_up = match raw.catch_up.as_deref() {
            None | Some("skip") => CatchUp::Skip,
            Some("all") => CatchUp::All,
            Some(other) => return Err(format!("catch_up '{other}' is not `skip` or `all`")),
        };
        Ok(ScheduleDef {
            name: raw.name,
            cron: raw.cron,
            timezone,
            selection: raw.select,
            partition,
            catch_up,
            times,
        })
    }
}

#[cfg(test)]
mod tests;
