//! Tiles: a grid of snapshots pre-aggregates each entity's events into tiles before copying them to
//! the cutoffs they count for, the way Tecton's aggregation tiles do. A tile is a stretch of one grid
//! period between two *boundaries*: the offsets in the period where some window (or the horizon)
//! starts, `(−w) mod every`. Every window of every cutoff then holds whole tiles, so count, sum,
//! mean, min and max over a window are the same aggregations over its tiles' partial aggregates,
//! and the grid copies one row per tile instead of one per event.
//!
//! Not tiled: `last` and `distinct` (no partial form here), and sums and means of anything but
//! integers and floats (a decimal's sum of sums would widen its type past the planned schema).

use super::sql::{ident, raw, T};
use super::{Aggregation, Feature};
use arrow::datatypes::Schema;

/// The tile start of each event, as a column of the tiled events.
const TILE: &str = "__spine_tile";

/// The partial aggregates of one tiled view.
pub(crate) struct Tiles {
    /// Offsets in the period where a tile starts, besides 0, ascending.
    boundaries: Vec<i64>,
    every: i64,
    /// (function, column) of each partial aggregate; its column is `__spine_p{index}`.
    partials: Vec<(&'static str, Option<String>)>,
}

impl Tiles {
    /// The tiles of a grid every `every` raw units, or none when a feature cannot be tiled.
    /// `schema`: the upstream's (unknown: not tiled).
    pub(crate) fn plan(
        features: &[Feature],
        schema: Option<&Schema>,
        every: i64,
        horizon: i64,
        per_second: i64,
    ) -> Option<Tiles> {
        let schema = schema?;
        let numeric = |c: &Option<String>| {
            c.as_deref()
                .and_then(|c| schema.field_with_name(c).ok())
                .is_some_and(|f| f.data_type().is_integer() || f.data_type().is_floating())
        };
        let mut tiles = Tiles {
            boundaries: Vec::new(),
            every,
            partials: Vec::new(),
        };
        for f in features {
            match f.aggregation {
                Aggregation::Last | Aggregation::Distinct => return None,
                Aggregation::Sum | Aggregation::Mean if !numeric(&f.column) => return None,
                _ => {}
            }
            tiles.boundary(raw(f.window, per_second));
            for p in partials(f) {
                if !tiles.partials.contains(&p) {
                    tiles.partials.push(p);
                }
            }
        }
        tiles.boundary(horizon);
        tiles.boundaries.sort_unstable();
        Some(tiles)
    }

    fn boundary(&mut self, window: i64) {
        let b = (self.every - window % self.every) % self.every;
        if b != 0 && !self.boundaries.contains(&b) {
            self.boundaries.push(b);
        }
    }

    fn column(&self, p: &(&'static str, Option<String>)) -> String {
        let i = self.partials.iter().position(|q| q == p).unwrap_or(0);
        format!("__spine_p{i}")
    }

    /// The tiles of `events` (a query with the key columns and `T`): one row per key and tile, with
    /// `T` the tile's start and the partial aggregates.
    pub(crate) fn sql(&self, events: &str, keys: &str) -> String {
        let every = self.every;
        let r = format!("((({T} % {every}) + {every}) % {every})");
        let mut start = format!("{T} - {r}");
        if !self.boundaries.is_empty() {
            let arms: Vec<String> = self
                .boundaries
                .iter()
                .rev()
                .map(|b| format!("WHEN {r} >= {b} THEN {b}"))
                .collect();
            start = format!("{start} + CASE {} ELSE 0 END", arms.join(" "));
        }
        let partials: Vec<String> = self
            .partials
            .iter()
            .map(|p| {
                let arg = p.1.as_deref().map_or("*".to_string(), ident);
                format!("{}({arg}) AS {}", p.0, self.column(p))
            })
            .collect();
        format!(
            "SELECT {keys}, {TILE} AS {T}, {} FROM (SELECT *, {start} AS {TILE} FROM ({events}) x) y \
             GROUP BY {keys}, {TILE}",
            partials.join(", ")
        )
    }

    /// The aggregate of `f` over the tiles where `inside` holds.
    pub(crate) fn aggregate(&self, f: &Feature, inside: &str) -> String {
        let sum = |p: (&'static str, Option<String>)| {
            format!("SUM(CASE WHEN {inside} THEN {} END)", self.column(&p))
        };
        let col = || f.column.clone();
        match f.aggregation {
            Aggregation::Count => format!("COALESCE({}, 0)", sum(("COUNT", col()))),
            Aggregation::Sum => sum(("SUM", col())),
            Aggregation::Mean => format!(
                "CAST({} AS DOUBLE) / CAST({} AS DOUBLE)",
                sum(("SUM", col())),
                sum(("COUNT", col()))
            ),
            Aggregation::Min | Aggregation::Max => {
                let p = partials(f).remove(0);
                format!("{}(CASE WHEN {inside} THEN {} END)", p.0, self.column(&p))
            }
            // Not tiled (see `plan`).
            Aggregation::Last | Aggregation::Distinct => "NULL".to_string(),
        }
    }
}

/// The partial aggregates a feature is computed from.
fn partials(f: &Feature) -> Vec<(&'static str, Option<String>)> {
    let c = f.column.clone();
    match f.aggregation {
        Aggregation::Count => vec![("COUNT", c)],
        Aggregation::Sum => vec![("SUM", c)],
        Aggregation::Mean => vec![("SUM", c.clone()), ("COUNT", c)],
        Aggregation::Min => vec![("MIN", c)],
        Aggregation::Max => vec![("MAX", c)],
        Aggregation::Last | Aggregation::Distinct => Vec::new(),
    }
}
