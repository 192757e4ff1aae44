//! Time-window partitions: consecutive hours, days, weeks or calendar months in a timezone.
//!
//! Windows are counted in local (wall-clock) time from `start`: window `i` starts at `start + i` steps.
//! A wall-clock start that does not exist in the timezone (the hour skipped when clocks go forward) has
//! no partition; an ambiguous one (the hour repeated when they go back) starts at its earlier instant.

use super::Window;
use crate::key::PartitionKey;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// How long a window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// One hour.
    Hourly,
    /// One day.
    Daily,
    /// Seven days, from the start's weekday.
    Weekly,
    /// One calendar month, from the start's day of the month.
    Monthly,
}

impl Cadence {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Cadence::Hourly => "hourly",
            Cadence::Daily => "daily",
            Cadence::Weekly => "weekly",
            Cadence::Monthly => "monthly",
        }
    }

    fn default_format(self) -> &'static str {
        match self {
            Cadence::Hourly => "%Y-%m-%d-%H:%M",
            _ => "%Y-%m-%d",
        }
    }
}

/// `daily: {…}` (and the others) as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindows {
    start: String,
    end: Option<String>,
    timezone: Option<String>,
    format: Option<String>,
}

/// A validated time-window definition.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindows {
    /// Window length.
    pub cadence: Cadence,
    /// First window's start, wall-clock time in `tz`.
    pub start: NaiveDateTime,
    /// No window starts at or after this wall-clock time.
    pub end: Option<NaiveDateTime>,
    /// Timezone of the wall-clock times.
    pub tz: Tz,
    /// strftime format of the keys.
    pub format: String,
}

/// `2026-01-01`, `2026-01-01 06:00`, `2026-01-01T06:00:00`.
fn parse_time(field: &str, s: &str) -> Result<NaiveDateTime, String> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t);
        }
    }
    Err(format!(
        "{field} '{s}' is not a date or time; write e.g. 2026-01-01 or 2026-01-01 06:00"
    ))
}

/// A date (its day) or a time to the minute (its hour), as written in a range of another asset's
/// keys: `2026-11-01`, `2026-11-01-05:00` (hourly keys), `2026-11-01 05:00`, `2026-11-01T05:00`.
fn loose_time(s: &str) -> Option<(NaiveDateTime, Duration)> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((d.and_hms_opt(0, 0, 0)?, Duration::try_days(1)?));
    }
    ["%Y-%m-%d-%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|t| Some((t, Duration::try_hours(1)?)))
}

impl TimeWindows {
    pub(super) fn new(cadence: Cadence, raw: RawWindows) -> Result<Self, String> {
        let start = parse_time("start", &raw.start)?;
        let end = raw
            .end
            .as_deref()
            .map(|e| parse_time("end", e))
            .transpose()?;
        let tz: Tz = match raw.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                format!("unknown timezone '{name}'; use an IANA name such as UTC, Europe/Berlin or America/New_York")
            })?,
        };
        let format = raw
            .format
            .unwrap_or_else(|| cadence.default_format().to_string());
        let w = TimeWindows {
            cadence,
            start,
            end,
            tz,
            format,
        };
        if let Some(e) = end {
            if e <= start {
                return Err(format!("end {e} is not after start {start}"));
            }
        }
        // The format must name each window uniquely and read back to the window's start.
        for i in 0..2 {
            let t = w.local_start(i).ok_or("the window is out of range")?;
            let key = w.key_at(t);
            if w.parse_key(&key) != Some(t) {
                return Err(format!(
                    "format '{}' does not identify a {} window (the window starting {t} would be '{key}', which does not read back to it); include every field down to the {}",
                    w.format,
                    cadence.as_str(),
                    match cadence {
                        Cadence::Hourly => "hour and minute",
                        _ => "day",
                    }
                ));
            }
        }
        Ok(w)
    }

    /// Wall-clock start of window `i`.
    fn local_start(&self, i: i64) -> Option<NaiveDateTime> {
        match self.cadence {
            Cadence::Hourly => self.start.checked_add_signed(Duration::try_hours(i)?),
            Cadence::Daily => self.start.checked_add_signed(Duration::try_days(i)?),
            Cadence::Weekly => self.start.checked_add_signed(Duration::try_weeks(i)?),
            Cadence::Monthly => self
                .start
                .checked_add_months(chrono::Months::new(u32::try_from(i).ok()?)),
        }
    }

    /// The instant a wall-clock time names (its earlier one when ambiguous; none in a gap).
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Tz>> {
        self.tz.from_local_datetime(&local).earliest()
    }

    fn key_at(&self, local: NaiveDateTime) -> String {
        local.format(&self.format).to_string()
    }

    fn parse_key(&self, key: &str) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(key, &self.format)
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(key, &self.format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
    }

    /// The window index whose wall-clock start is `t`, if any.
    fn index_of(&self, t: NaiveDateTime) -> Option<i64> {
        let i = match self.cadence {
            Cadence::Hourly => (t - self.start).num_hours(),
            Cadence::Daily => (t - self.start).num_days(),
            Cadence::Weekly => (t - self.start).num_weeks(),
            Cadence::Monthly => {
                (t.year() as i64 - self.start.year() as i64) * 12 + t.month() as i64
                    - self.start.month() as i64
            }
        };
        (i >= 0 && self.local_start(i) == Some(t)).then_some(i)
    }

    /// Whether window `i` exists at `now`: its start exists in the timezone, it starts before `end`,
    /// and it has ended. `None` once windows start at or after `end` or end after `now` (no later
    /// window exists either).
    fn exists(&self, i: i64, now: DateTime<Utc>) -> Option<bool> {
        let start = self.local_start(i)?;
        if self.end.is_some_and(|e| start >= e) {
            return None;
        }
        // The window ends where the next existing wall-clock start is.
        let ends = (1..4).find_map(|k| self.local_start(i + k).and_then(|t| self.instant(t)))?;
        if ends.with_timezone(&Utc) > now {
            return None;
        }
        Some(self.instant(start).is_some())
    }

    /// Every window that exists at `now`.
    pub fn keys(&self, now: DateTime<Utc>) -> Vec<PartitionKey> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(exists) = self.exists(i, now) {
            if exists {
                if let Some(t) = self.local_start(i) {
                    out.push(PartitionKey(self.key_at(t)));
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `key` names a window that exists at `now`; the error says why not.
    pub fn check(&self, key: &PartitionKey, now: DateTime<Utc>) -> Result<(), String> {
        let t = self.parse_key(key.as_str()).ok_or_else(|| {
            format!(
                "'{key}' is not a {} partition key (format {}, e.g. {})",
                self.cadence.as_str(),
                self.format,
                self.key_at(self.start)
            )
        })?;
        let i = self.index_of(t).ok_or_else(|| {
            format!(
                "'{key}' is not the start of a {} window counted from {}",
                self.cadence.as_str(),
                self.key_at(self.start)
            )
        })?;
        match self.exists(i, now) {
            Some(true) => Ok(()),
            Some(false) => Err(format!(
                "'{key}' does not exist in {} (clocks skip it)",
                self.tz
            )),
            None if self.end.is_some_and(|e| t >= e) => {
                Err(format!("'{key}' is at or after the definition's end"))
            }
            None => Err(format!(
                "'{key}' has not ended yet (a window's partition exists once the window is over)"
            )),
        }
    }

    /// The instant window `i` starts (the next existing wall-clock start, in a DST gap).
    fn start_instant(&self, i: i64) -> Option<DateTime<Utc>> {
        (0..4).find_map(|k| {
            self.local_start(i + k)
                .and_then(|t| self.instant(t))
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// The partitions whose windows overlap `[start, end)` and exist at `end` (a daily partition's
    /// days, for a weekly or monthly window), in order.
    pub fn overlapping(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<PartitionKey> {
        self.overlapping_at(start, end, end)
    }

    /// `from..to` as a span of time for these windows: from the start of `from` to the end of `to`,
    /// each a key of these windows (its window) or a date or time in their timezone (a date is its
    /// day, a time its hour). `None` when either is neither.
    pub fn span(&self, from: &str, to: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let own = |k: &str| self.window(&PartitionKey(k.to_string()));
        let start = match own(from) {
            Some(w) => w.start.with_timezone(&Utc),
            None => self.instant(loose_time(from)?.0)?.with_timezone(&Utc),
        };
        let end = match own(to) {
            Some(w) => w.end.with_timezone(&Utc),
            None => {
                let (t, length) = loose_time(to)?;
                self.instant(t.checked_add_signed(length)?)?
                    .with_timezone(&Utc)
            }
        };
        (start < end).then_some((start, end))
    }

    /// The windows that overlap `[start, end)` and exist at `now`, in order.
    pub fn overlapping_at(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<PartitionKey> {
        // Window ends grow with i: find the first window that ends after `start`.
        let ends_after = |i: i64| self.start_instant(i + 1).is_some_and(|e| e > start);
        let mut hi = 1i64;
        while !ends_after(hi) {
            if self.local_start(hi).is_none() || hi > (1 << 40) {
                return Vec::new();
            }
            hi *= 2;
        }
        let mut lo = 0i64;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ends_after(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let mut out = Vec::new();
        let mut i = lo;
        while self.start_instant(i).is_some_and(|s| s < end) {
            match self.exists(i, now) {
                Some(true) => {
                    if let Some(t) = self.local_start(i) {
                        out.push(PartitionKey(self.key_at(t)));
                    }
                }
                Some(false) => {}
                None => break,
            }
            i += 1;
        }
        out
    }

    /// The keys of the windows `from..=to` positions away from `key`'s (negative: earlier), that start
    /// at or after the first window and before `end`; whether they exist yet is the reader's concern.
    pub fn shifted(&self, key: &PartitionKey, from: i64, to: i64) -> Vec<PartitionKey> {
        let Some(i) = self.parse_key(key.as_str()).and_then(|t| self.index_of(t)) else {
            return Vec::new();
        };
        (i + from..=i + to)
            .filter(|j| *j >= 0)
            .filter_map(|j| self.local_start(j))
            .filter(|t| self.end.is_none_or(|e| *t < e) && self.instant(*t).is_some())
            .map(|t| PartitionKey(self.key_at(t)))
            .collect()
    }

    /// The window of `key` as instants with their UTC offset.
    pub fn window(&self, key: &PartitionKey) -> Option<Window> {
        let t = self.parse_key(key.as_str())?;
        let i = self.index_of(t)?;
        let start = self.instant(t)?;
        let end = (1..4).find_map(|k| self.local_start(i + k).and_then(|n| self.instant(n)))?;
        Some(Window {
            start: start.fixed_offset(),
            end: end.fixed_offset(),
        })
    }
}
