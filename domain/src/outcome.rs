//! Outcome measures: how an instrument's score is made from the patient's answers, and
//! whether a score shows an improvement (or a worsening) of at least the minimal
//! clinically important difference (MCID).
//!
//! - a **score** is one item's value, the sum of items or the mean of the items answered,
//!   rounded to the digits the instrument keeps;
//! - the **baseline** is the first score of a series (sorted by time);
//! - the **change** of a later score is score - baseline; the MCID is reached when the
//!   change is at least the MCID in the better direction (exactly the MCID counts), and a
//!   score is **worse** when the change is at least the MCID in the other direction;
//! - for a transition scale (the patient rates the change itself, as a global rating of
//!   change does) the value is the change: the MCID is reached when the value is at
//!   least the MCID, and there is no change from baseline.

use std::collections::BTreeMap;

use jiff::Timestamp;

/// Which way a score improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A higher score is better (function scales).
    HigherIsBetter,
    /// A lower score is better (pain).
    LowerIsBetter,
}

impl Direction {
    /// The code: `higher-is-better` or `lower-is-better`.
    pub fn code(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher-is-better",
            Direction::LowerIsBetter => "lower-is-better",
        }
    }

    /// The change in the better direction: positive when better.
    fn better(self, change: f64) -> f64 {
        match self {
            Direction::HigherIsBetter => change,
            Direction::LowerIsBetter => -change,
        }
    }
}

/// How an instrument's score is made from its answers (item linkIds -> numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// The value of one item.
    Item(&'static str),
    /// The sum of these items, every one answered.
    Sum(&'static [&'static str]),
    /// The mean of the items answered among these, at least `min_answered` of them.
    Mean {
        /// The items that may be answered.
        items: &'static [&'static str],
        /// The fewest answered items a score is made of.
        min_answered: usize,
    },
}

/// What the MCID is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McidOn {
    /// The change from the baseline score.
    Change,
    /// The value itself: the patient reports the change (a global rating of change).
    Value,
}

/// The scoring and interpretation of one instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// How the score is made.
    pub scoring: Scoring,
    /// The lowest score (and, for one item or a mean, the lowest value of an item).
    pub min: f64,
    /// The highest score (and, for one item or a mean, the highest value of an item).
    pub max: f64,
    /// Which way the score improves.
    pub direction: Direction,
    /// The minimal clinically important difference, in score points.
    pub mcid: f64,
    /// What the MCID is compared with.
    pub mcid_on: McidOn,
    /// Digits kept after the decimal point in the score (0: whole numbers).
    pub decimals: u8,
}

/// Why answers give no score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// Items the score needs have no numeric answer.
    #[error("the score needs an answer to {}", list(.items))]
    Missing {
        /// The linkIds of the items without an answer.
        items: Vec<String>,
    },
    /// Fewer items were answered than the score is made of.
    #[error("the score needs answers to at least {needed} of {}; {answered} answered", list(.items))]
    TooFew {
        /// The items that may be answered.
        items: Vec<String>,
        /// How many were answered.
        answered: usize,
        /// The fewest answers a score is made of.
        needed: usize,
    },
    /// A value (of an item, or the score made of them) is outside the instrument's range.
    #[error("{} is {value}, outside {min} to {max}", .item.as_deref().map_or_else(|| "the score".to_string(), |i| format!("the answer to {i}")))]
    OutOfRange {
        /// The item whose answer is out of range; `None` for the score itself.
        item: Option<String>,
        /// The value found.
        value: f64,
        /// The lowest value allowed.
        min: f64,
        /// The highest value allowed.
        max: f64,
    },
}

fn list(items: &[String]) -> String {
    match items {
        [] => "no item".to_string(),
        [one] => format!("item {one}"),
        _ => format!("items {}", items.join(", ")),
    }
}

/// `x` rounded to `decimals` digits after the decimal point (half away from zero).
pub fn round(x: f64, decimals: u8) -> f64 {
    let factor = 10f64.powi(i32::from(decimals));
    (x * factor).round() / factor
}

impl Rule {
    /// The score from the numeric answers (linkId -> value), rounded to
    /// [`Rule::decimals`] digits; an error naming the items without an answer, or the
    /// value outside the range.
    pub fn score(&self, answers: &BTreeMap<String, f64>) -> Result<f64, ScoreError> {
        let in_range = |item: Option<&str>, value: f64| {
            if value.is_finite() && value >= self.min && value <= self.max {
                Ok(value)
            } else {
                Err(ScoreError::OutOfRange {
                    item: item.map(str::to_string),
                    value,
                    min: self.min,
                    max: self.max,
                })
            }
        };
        let raw = match self.scoring {
            Scoring::Item(item) => match answers.get(item) {
                Some(v) => in_range(Some(item), *v)?,
                None => {
                    return Err(ScoreError::Missing {
                        items: vec![item.to_string()],
                    });
                }
            },
            Scoring::Sum(items) => {
                let missing: Vec<String> = items
                    .iter()
                    .filter(|i| !answers.contains_key(**i))
                    .map(|i| i.to_string())
                    .collect();
                if !missing.is_empty() {
                    return Err(ScoreError::Missing { items: missing });
                }
                let mut sum = 0.0;
                for item in items {
                    let v = answers.get(*item).copied().unwrap_or_default();
                    if !v.is_finite() {
                        return in_range(Some(item), v);
                    }
                    sum += v;
                }
                sum
            }
            Scoring::Mean {
                items,
                min_answered,
            } => {
                let mut sum = 0.0;
                let mut answered = 0usize;
                for item in items {
                    if let Some(v) = answers.get(*item) {
                        sum += in_range(Some(item), *v)?;
                        answered += 1;
                    }
                }
                if answered < min_answered.max(1) {
                    return Err(ScoreError::TooFew {
                        items: items.iter().map(|i| i.to_string()).collect(),
                        answered,
                        needed: min_answered.max(1),
                    });
                }
                sum / answered as f64
            }
        };
        in_range(None, round(raw, self.decimals))
    }

    /// What the MCID is compared with: score - baseline (rounded as the score is), or
    /// the value itself for [`McidOn::Value`]; `None` without a baseline.
    fn compared(&self, baseline: Option<f64>, score: f64) -> Option<f64> {
        match self.mcid_on {
            McidOn::Change => baseline.map(|b| round(score - b, self.decimals)),
            McidOn::Value => Some(score),
        }
        .map(|c| self.direction.better(c))
    }

    /// Whether `change` (score - baseline, or the value for [`McidOn::Value`]) is an
    /// improvement of at least the MCID, considering the direction. Without a baseline
    /// (the baseline score itself) there is no improvement, except for
    /// [`McidOn::Value`].
    pub fn improved(&self, baseline: Option<f64>, score: f64) -> bool {
        self.compared(baseline, score)
            .is_some_and(|better| better >= self.mcid)
    }

    /// Whether the score is worse than the baseline by at least the MCID (for
    /// [`McidOn::Value`], a value of at most -MCID).
    pub fn worsened(&self, baseline: Option<f64>, score: f64) -> bool {
        self.compared(baseline, score)
            .is_some_and(|better| better <= -self.mcid)
    }

    /// The change from the baseline of a score, rounded as the score is; `None` for the
    /// baseline itself and for [`McidOn::Value`] (the value is the change).
    pub fn change(&self, baseline: Option<f64>, score: f64) -> Option<f64> {
        match self.mcid_on {
            McidOn::Change => baseline.map(|b| round(score - b, self.decimals)),
            McidOn::Value => None,
        }
    }
}

/// One score of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// When the answers were given.
    pub at: Timestamp,
    /// The score.
    pub score: f64,
    /// The change from the baseline (the first point); `None` for the baseline and for
    /// [`McidOn::Value`] instruments.
    pub change: Option<f64>,
    /// Whether the MCID is reached (see [`Rule::improved`]).
    pub mcid_reached: bool,
    /// Whether the score is worse by at least the MCID (see [`Rule::worsened`]).
    pub worsened: bool,
}

/// The series of one measure: sorted by time (scores at the same instant keep their
/// order), first = baseline.
pub fn series(rule: &Rule, scores: &[(Timestamp, f64)]) -> Vec<Point> {
    let mut sorted: Vec<(Timestamp, f64)> = scores.to_vec();
    sorted.sort_by_key(|(at, _)| *at);
    let mut baseline = None;
    sorted
        .into_iter()
        .map(|(at, score)| {
            let point = Point {
                at,
                score,
                change: rule.change(baseline, score),
                mcid_reached: rule.improved(baseline, score),
                worsened: rule.worsened(baseline, score),
            };
            baseline.get_or_insert(score);
            point
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIN: Rule = Rule {
        scoring: Scoring::Item("pain"),
        min: 0.0,
        max: 10.0,
        direction: Direction::LowerIsBetter,
        mcid: 2.0,
        mcid_on: McidOn::Change,
        decimals: 0,
    };
    const SUM: Rule = Rule {
        scoring: Scoring::Sum(&["a", "b", "c"]),
        min: 0.0,
        max: 12.0,
        direction: Direction::HigherIsBetter,
        mcid: 9.0,
        mcid_on: McidOn::Change,
        decimals: 0,
    };
    const MEAN: Rule = Rule {
        scoring: Scoring::Mean {
            items: &["r1", "r2", "r3", "r4", "r5"],
            min_answered: 3,
        },
        min: 0.0,
        max: 10.0,
        direction: Direction::HigherIsBetter,
        mcid: 2.0,
        mcid_on: McidOn::Change,
        decimals: 1,
    };
    const GLOBAL: Rule = Rule {
        scoring: Scoring::Item("change"),
        min: -7.0,
        max: 7.0,
        direction: Direction::HigherIsBetter,
        mcid: 3.0,
        mcid_on: McidOn::Value,
        decimals: 0,
    };

    fn answers(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn outcome_one_item_is_its_value_in_range() {
        assert_eq!(PAIN.score(&answers(&[("pain", 7.0)])), Ok(7.0));
        let missing = PAIN.score(&answers(&[("other", 1.0)]));
        assert_eq!(
            missing,
            Err(ScoreError::Missing {
                items: vec!["pain".into()]
            })
        );
        assert_eq!(
            missing.map_err(|e| e.to_string()),
            Err("the score needs an answer to item pain".into())
        );
        let high = PAIN.score(&answers(&[("pain", 11.0)]));
        assert_eq!(
            high.map_err(|e| e.to_string()),
            Err("the answer to pain is 11, outside 0 to 10".into())
        );
        assert!(PAIN.score(&answers(&[("pain", f64::NAN)])).is_err());
    }

    #[test]
    fn outcome_a_sum_needs_every_item() {
        let all = answers(&[("a", 4.0), ("b", 4.0), ("c", 3.0)]);
        assert_eq!(SUM.score(&all), Ok(11.0));
        let err = SUM
            .score(&answers(&[("b", 1.0)]))
            .map_err(|e| e.to_string());
        assert_eq!(err, Err("the score needs an answer to items a, c".into()));
        // the total is checked against the range
        let over = answers(&[("a", 5.0), ("b", 5.0), ("c", 5.0)]);
        assert_eq!(
            SUM.score(&over),
            Err(ScoreError::OutOfRange {
                item: None,
                value: 15.0,
                min: 0.0,
                max: 12.0
            })
        );
    }

    #[test]
    fn outcome_a_mean_of_the_items_answered_rounded() {
        let three = answers(&[("r1", 7.0), ("r2", 8.0), ("r4", 8.0)]);
        assert_eq!(MEAN.score(&three), Ok(7.7), "23 / 3 = 7.67 -> 7.7");
        let five = answers(&[
            ("r1", 1.0),
            ("r2", 2.0),
            ("r3", 2.0),
            ("r4", 2.0),
            ("r5", 2.0),
        ]);
        assert_eq!(MEAN.score(&five), Ok(1.8));
        let two = answers(&[("r1", 7.0), ("r2", 8.0)]);
        assert_eq!(
            MEAN.score(&two),
            Err(ScoreError::TooFew {
                items: ["r1", "r2", "r3", "r4", "r5"].map(String::from).to_vec(),
                answered: 2,
                needed: 3
            })
        );
        let bad = answers(&[("r1", 7.0), ("r2", 8.0), ("r3", -1.0)]);
        assert!(matches!(
            MEAN.score(&bad),
            Err(ScoreError::OutOfRange { item: Some(i), .. }) if i == "r3"
        ));
        assert_eq!(round(2.25, 1), 2.3);
        assert_eq!(round(-2.25, 1), -2.3);
    }

    #[test]
    fn outcome_direction_and_the_mcid_edge() {
        // pain: lower is better; exactly 2 points down counts
        assert!(PAIN.improved(Some(6.0), 4.0));
        assert!(!PAIN.improved(Some(6.0), 5.0));
        assert!(!PAIN.improved(Some(6.0), 8.0));
        assert!(PAIN.worsened(Some(6.0), 8.0));
        assert!(!PAIN.worsened(Some(6.0), 7.0));
        // function: higher is better
        assert!(SUM.improved(Some(2.0), 11.0));
        assert!(!SUM.improved(Some(2.0), 10.0));
        assert!(SUM.worsened(Some(11.0), 2.0));
        // a mean whose difference is not exact in binary still counts at the MCID
        assert!(MEAN.improved(Some(5.3), 7.3));
        assert!(MEAN.worsened(Some(7.3), 5.3));
        assert!(!MEAN.improved(Some(5.3), 7.2));
        // no baseline: no improvement, no worsening
        assert!(!PAIN.improved(None, 0.0));
        assert!(!PAIN.worsened(None, 10.0));
        // the value is the change
        assert!(GLOBAL.improved(None, 3.0));
        assert!(
            GLOBAL.improved(Some(7.0), 3.0),
            "the baseline does not matter"
        );
        assert!(!GLOBAL.improved(None, 2.0));
        assert!(GLOBAL.worsened(None, -3.0));
        assert!(!GLOBAL.worsened(None, -2.0));
        assert_eq!(Direction::LowerIsBetter.code(), "lower-is-better");
    }

    #[test]
    fn outcome_series_sorted_with_the_first_as_baseline() {
        assert!(series(&PAIN, &[]).is_empty());
        let one = series(&PAIN, &[(at("2026-03-02T10:00:00Z"), 7.0)]);
        assert_eq!(
            one,
            vec![Point {
                at: at("2026-03-02T10:00:00Z"),
                score: 7.0,
                change: None,
                mcid_reached: false,
                worsened: false
            }]
        );
        let points = series(
            &PAIN,
            &[
                (at("2026-03-16T10:00:00Z"), 4.0),
                (at("2026-03-02T10:00:00Z"), 7.0),
                (at("2026-03-09T10:00:00Z"), 6.0),
                (at("2026-03-23T10:00:00Z"), 9.0),
            ],
        );
        let summary: Vec<(f64, Option<f64>, bool, bool)> = points
            .iter()
            .map(|p| (p.score, p.change, p.mcid_reached, p.worsened))
            .collect();
        assert_eq!(
            summary,
            vec![
                (7.0, None, false, false),
                (6.0, Some(-1.0), false, false),
                (4.0, Some(-3.0), true, false),
                (9.0, Some(2.0), false, true),
            ]
        );
        assert!(points.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn outcome_series_of_a_transition_scale() {
        let one = series(&GLOBAL, &[(at("2026-03-02T10:00:00Z"), 5.0)]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].change, None);
        assert!(one[0].mcid_reached, "the value itself is the change");
        let two = series(
            &GLOBAL,
            &[
                (at("2026-03-02T10:00:00Z"), 5.0),
                (at("2026-03-09T10:00:00Z"), -4.0),
            ],
        );
        assert_eq!(
            two.iter()
                .map(|p| (p.change, p.mcid_reached, p.worsened))
                .collect::<Vec<_>>(),
            vec![(None, true, false), (None, false, true)]
        );
    }
}
