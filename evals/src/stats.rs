//! The statistics of the paired regression gate (ADR 0024): a one-sided interval on the mean paired
//! difference (candidate − baseline) per case, and the number of cases needed to tell a regression of
//! the margin from noise.
//!
//! - **Pass/fail scores** (every score 0 or 1, one sample per case): McNemar's setting. With `b`
//!   cases the candidate newly fails and `c` it newly passes out of `n`, the difference is
//!   `(c − b) / n`; its bound is `d ± (z·σ/√n + 1/n)` (a continuity correction), where `σ² ≤` the
//!   discordance rate, bounded above exactly (Clopper–Pearson) so that a sample with no discordant
//!   pair still has a width.
//! - **Graded scores** (or several samples): a paired bootstrap of the mean difference (seeded by the
//!   case ids, so a verdict is reproducible), percentile bounds.
//! - **Cases needed**: `⌈((z_conf + z_power)·σ_u / margin)²⌉` for 80% power, with `σ_u` an upper
//!   confidence bound of the differences' spread (the discordance bound above; for graded scores the
//!   χ² bound of the sample deviation, or the discordance bound when no case differs).
//!
//! The verdict: **regression** when the upper bound is below `−margin` (worse, whatever the sample
//! size); **inconclusive** when there are fewer cases than needed; **pass** when the lower bound is at
//! least `−margin`; **regression** otherwise.

/// The gate's verdict on one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No regression beyond the margin (at the confidence).
    Pass,
    /// A regression beyond the margin cannot be ruled out with a sample big enough to rule it out.
    Regression,
    /// The sample is too small to tell a regression of the margin from noise.
    Inconclusive,
}

/// One paired comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// The verdict.
    pub verdict: Verdict,
    /// Paired cases.
    pub n: usize,
    /// Mean difference (candidate − baseline).
    pub mean_diff: f64,
    /// One-sided lower bound at the confidence.
    pub lower: f64,
    /// One-sided upper bound at the confidence.
    pub upper: f64,
    /// Cases needed to detect a regression of the margin.
    pub needed: usize,
    /// `mcnemar` or `bootstrap`.
    pub method: &'static str,
    /// Cases the candidate newly fails (pass/fail scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newly_failing: Option<usize>,
    /// Cases the candidate newly passes (pass/fail scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newly_passing: Option<usize>,
}

/// How a comparison is made.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The regression that matters (a difference in mean score).
    pub margin: f64,
    /// One-sided confidence, e.g. 0.95.
    pub confidence: f64,
    /// Power to detect a regression of the margin, for the cases needed (0.8).
    pub power: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
}

/// The standard normal quantile (Acklam's rational approximation; |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// `ln(n choose k)`.
fn ln_choose(n: usize, k: usize) -> f64 {
    fn ln_fact(n: usize) -> f64 {
        (2..=n).map(|i| (i as f64).ln()).sum()
    }
    ln_fact(n) - ln_fact(k) - ln_fact(n - k)
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`.
fn binomial_cdf(k: usize, n: usize, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    (0..=k.min(n))
        .map(|i| (ln_choose(n, i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp())
        .sum::<f64>()
        .min(1.0)
}

/// The one-sided Clopper–Pearson upper bound of a proportion: `k` of `n`, at `confidence`.
pub fn proportion_upper(k: usize, n: usize, confidence: f64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let alpha = 1.0 - confidence;
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if binomial_cdf(k, n, mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The lower `q` quantile of χ² with `df` degrees of freedom (Wilson–Hilferty).
fn chi2_quantile(q: f64, df: f64) -> f64 {
    let z = normal_quantile(q);
    let a = 2.0 / (9.0 * df);
    (df * (1.0 - a + z * a.sqrt()).powi(3)).max(1e-12)
}

/// A small, seeded generator (SplitMix64): the bootstrap is reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn verdict(s: &Settings, n: usize, lower: f64, upper: f64, needed: usize) -> Verdict {
    if upper < -s.margin {
        Verdict::Regression
    } else if n < needed {
        Verdict::Inconclusive
    } else if lower >= -s.margin {
        Verdict::Pass
    } else {
        Verdict::Regression
    }
}

fn needed(s: &Settings, sigma: f64) -> usize {
    let z = normal_quantile(s.confidence) + normal_quantile(s.power);
    ((z * sigma / s.margin).powi(2)).ceil().max(2.0) as usize
}

/// Compares paired per-case scores (candidate, baseline), each a case's mean over its samples;
/// `binary` when every score is a single 0 or 1. `seed` fixes the bootstrap.
pub fn compare(pairs: &[(f64, f64)], binary: bool, s: &Settings, seed: u64) -> Comparison {
    let n = pairs.len();
    let diffs: Vec<f64> = pairs.iter().map(|(c, b)| c - b).collect();
    let mean = if n == 0 {
        0.0
    } else {
        diffs.iter().sum::<f64>() / n as f64
    };
    let z = normal_quantile(s.confidence);
    if n < 2 {
        return Comparison {
            verdict: Verdict::Inconclusive,
            n,
            mean_diff: mean,
            lower: -1.0,
            upper: 1.0,
            needed: needed(s, 1.0),
            method: if binary { "mcnemar" } else { "bootstrap" },
            newly_failing: None,
            newly_passing: None,
        };
    }
    let differing = diffs.iter().filter(|d| d.abs() > 1e-12).count();
    let discordance = proportion_upper(differing, n, s.confidence).sqrt();
    if binary {
        let b = diffs.iter().filter(|d| **d < -0.5).count();
        let c = diffs.iter().filter(|d| **d > 0.5).count();
        let half = z * discordance / (n as f64).sqrt() + 1.0 / n as f64;
        let (lower, upper) = (mean - half, mean + half);
        let needed = needed(s, discordance);
        return Comparison {
            verdict: verdict(s, n, lower, upper, needed),
            n,
            mean_diff: mean,
            lower,
            upper,
            needed,
            method: "mcnemar",
            newly_failing: Some(b),
            newly_passing: Some(c),
        };
    }
    let mut rng = SplitMix(seed);
    let mut means: Vec<f64> = (0..s.resamples.max(100))
        .map(|_| (0..n).map(|_| diffs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * means.len() as f64) as usize).min(means.len() - 1)];
    let (lower, upper) = (at(1.0 - s.confidence), at(s.confidence));
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let sigma = if differing == 0 {
        discordance
    } else {
        let df = (n - 1) as f64;
        (sd * (df / chi2_quantile(1.0 - s.confidence, df)).sqrt()).min(1.0)
    };
    let needed = needed(s, sigma);
    Comparison {
        verdict: verdict(s, n, lower, upper, needed),
        n,
        mean_diff: mean,
        lower,
        upper,
        needed,
        method: "bootstrap",
        newly_failing: None,
        newly_passing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings {
        margin: 0.05,
        confidence: 0.95,
        power: 0.8,
        resamples: 2000,
    };

    #[test]
    fn quantiles_and_bounds_match_tables() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_quantile(0.8) - 0.841_621_2).abs() < 1e-6);
        assert!((normal_quantile(0.025) + 1.959_964).abs() < 1e-5);
        // Clopper–Pearson one-sided 95% upper bounds: 0 of 10 is 1 − 0.05^(1/10) = 0.2589.
        assert!((proportion_upper(0, 10, 0.95) - 0.258_865).abs() < 1e-4);
        // 5 of 20: 0.4556 (tables).
        assert!((proportion_upper(5, 20, 0.95) - 0.4556).abs() < 2e-3);
        // χ²(0.05, 10) = 3.940.
        assert!((chi2_quantile(0.05, 10.0) - 3.940).abs() < 0.05);
    }

    #[test]
    fn identical_answers_pass_with_enough_cases_and_are_inconclusive_with_few() {
        let same: Vec<(f64, f64)> = (0..200)
            .map(|i| ((i % 3 != 0) as u8 as f64, (i % 3 != 0) as u8 as f64))
            .collect();
        let c = compare(&same, true, &S, 1);
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        assert!(c.lower < 0.0 && c.lower > -0.05, "{c:?}");
        let few = &same[..10];
        let c = compare(few, true, &S, 1);
        assert_eq!(c.verdict, Verdict::Inconclusive, "{c:?}");
        assert!(c.needed > 100, "{c:?}");
    }

    #[test]
    fn a_real_regression_fails_and_a_small_dip_within_the_margin_passes() {
        // 40 of 200 newly failing.
        let worse: Vec<(f64, f64)> = (0..200)
            .map(|i| (if i < 40 { 0.0 } else { 1.0 }, 1.0))
            .collect();
        let c = compare(&worse, true, &S, 1);
        assert_eq!(c.verdict, Verdict::Regression, "{c:?}");
        assert!(c.upper < -0.05);
        assert_eq!((c.newly_failing, c.newly_passing), (Some(40), Some(0)));
        // A drastic regression on few cases is still a regression.
        let c = compare(&worse[..8], true, &S, 1);
        assert_eq!(c.verdict, Verdict::Regression, "{c:?}");
        // 2 newly failing and 2 newly passing of 2000: no regression.
        let even: Vec<(f64, f64)> = (0..2000)
            .map(|i| match i {
                0 | 1 => (0.0, 1.0),
                2 | 3 => (1.0, 0.0),
                _ => (1.0, 1.0),
            })
            .collect();
        assert_eq!(compare(&even, true, &S, 1).verdict, Verdict::Pass);
    }

    #[test]
    fn graded_scores_are_bootstrapped_reproducibly() {
        let pairs: Vec<(f64, f64)> = (0..300)
            .map(|i| {
                let b = 0.5 + ((i * 37) % 50) as f64 / 100.0;
                (b - 0.005 + ((i * 11) % 3) as f64 * 0.005, b)
            })
            .collect();
        let a = compare(&pairs, false, &S, 7);
        let b = compare(&pairs, false, &S, 7);
        assert_eq!((a.lower, a.upper), (b.lower, b.upper));
        assert_eq!(a.method, "bootstrap");
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
        let down: Vec<(f64, f64)> = pairs.iter().map(|(c, b)| (c - 0.2, *b)).collect();
        assert_eq!(compare(&down, false, &S, 7).verdict, Verdict::Regression);
    }
}
