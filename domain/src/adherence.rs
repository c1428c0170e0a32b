//! Adherence figures of a program, from its scheduled occurrences and what was reported
//! (formula version [`FORMULA_VERSION`]):
//!
//! - an occurrence is **due** when its window has closed by the as-of instant (the end
//!   of the period asked for, or now if earlier), or when it was completed or failed
//!   earlier; cancelled occurrences never count;
//! - **exercise adherence** = completed / due;
//! - **session adherence** = days (patient's local dates) on which every due occurrence
//!   was completed / days with at least one due occurrence;
//! - **dose adherence** = sum over due occurrences of min(sets x repetitions done,
//!   prescribed) / sum of prescribed; a missed occurrence counts 0;
//! - **active days (30)** = local dates with at least one completion in the 30 days up
//!   to the as-of instant (remote therapeutic monitoring counts these);
//! - **pain** = first, last and mean score reported, in the order of the occurrences.
//!
//! Weeks are numbered from the first day of the period asked for (week 1 = its first 7
//! local days). Each occurrence carries the volume prescribed by the exercise version in
//! force when it was scheduled, so figures stay attributable to that version.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::occurrence::Status;

/// The version of the formulas above, stated with every result.
pub const FORMULA_VERSION: &str = "1";

/// One occurrence as adherence needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The prescription (exercise version) it belongs to.
    pub exercise: String,
    pub due_from: Timestamp,
    pub due_until: Timestamp,
    pub status: Status,
    /// When it was reported done.
    pub completed_at: Option<Timestamp>,
    /// Sets x repetitions done (completed occurrences).
    pub done_volume: Option<u32>,
    /// Sets x repetitions prescribed.
    pub prescribed_volume: u32,
    pub pain: Option<u8>,
    pub difficulty: Option<u8>,
}

/// The period asked for, in the patient's time zone.
#[derive(Debug, Clone)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    pub now: Timestamp,
    pub tz: TimeZone,
}

/// A fraction, kept exact (`None` as a percentage when nothing was due).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    /// The percentage, rounded to one decimal; `None` when the denominator is 0.
    pub fn percent(self) -> Option<f64> {
        (self.denominator > 0)
            .then(|| (self.numerator as f64 * 1000.0 / self.denominator as f64).round() / 10.0)
    }
}

/// First, last and mean of the scores reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub first: u8,
    pub last: u8,
    /// Rounded to one decimal.
    pub mean: f64,
    pub reports: u32,
}

/// The figures of a set of occurrences.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    pub due: u32,
    pub completed: u32,
    pub missed: u32,
    /// Completed after their window closed.
    pub late: u32,
    pub exercise: Ratio,
    pub session: Ratio,
    pub dose: Ratio,
    pub pain: Option<Trend>,
    pub difficulty: Option<Trend>,
}

impl Figures {
    /// Adds the counts and fractions of `other` (figures of a group of patients); trends
    /// are not added.
    pub fn add(&mut self, other: &Figures) {
        self.due += other.due;
        self.completed += other.completed;
        self.missed += other.missed;
        self.late += other.late;
        for (mine, theirs) in [
            (&mut self.exercise, other.exercise),
            (&mut self.session, other.session),
            (&mut self.dose, other.dose),
        ] {
            mine.numerator += theirs.numerator;
            mine.denominator += theirs.denominator;
        }
    }
}

/// One week of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    /// 1 for the first.
    pub number: u32,
    pub start: Date,
    pub figures: Figures,
}

/// Everything `$adherence` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Adherence {
    pub as_of: Timestamp,
    pub overall: Figures,
    /// Per prescription, in the order first seen.
    pub exercises: Vec<(String, Figures)>,
    pub weeks: Vec<Week>,
    pub active_days_30: u32,
}

fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_zoned(tz.clone()).date()
}

fn is_due(r: &Record, as_of: Timestamp) -> bool {
    match r.status {
        Status::Cancelled => false,
        Status::Completed | Status::Failed => true,
        Status::Requested => r.due_until <= as_of,
    }
}

fn trend(scores: impl Iterator<Item = u8>) -> Option<Trend> {
    let mut first = None;
    let mut last = 0;
    let mut sum = 0u32;
    let mut n = 0u32;
    for s in scores {
        first.get_or_insert(s);
        last = s;
        sum += u32::from(s);
        n += 1;
    }
    first.map(|first| Trend {
        first,
        last,
        mean: (f64::from(sum) * 10.0 / f64::from(n)).round() / 10.0,
        reports: n,
    })
}

/// The figures of `records` (already limited to the period), due as of `as_of`.
fn figures(records: &[&Record], as_of: Timestamp, tz: &TimeZone) -> Figures {
    let mut f = Figures::default();
    let mut days: BTreeMap<Date, bool> = BTreeMap::new();
    for r in records.iter().filter(|r| is_due(r, as_of)) {
        f.due += 1;
        f.dose.denominator += u64::from(r.prescribed_volume);
        let done = r.status == Status::Completed;
        if done {
            f.completed += 1;
            f.dose.numerator += u64::from(
                r.done_volume
                    .unwrap_or(r.prescribed_volume)
                    .min(r.prescribed_volume),
            );
            if r.completed_at.is_some_and(|c| c > r.due_until) {
                f.late += 1;
            }
        } else if r.status == Status::Failed || r.due_until <= as_of {
            f.missed += 1;
        }
        let day = days.entry(local_date(r.due_from, tz)).or_insert(true);
        *day &= done;
    }
    f.exercise = Ratio {
        numerator: u64::from(f.completed),
        denominator: u64::from(f.due),
    };
    f.session = Ratio {
        numerator: days.values().filter(|all| **all).count() as u64,
        denominator: days.len() as u64,
    };
    let done = || records.iter().filter(|r| r.status == Status::Completed);
    f.pain = trend(done().filter_map(|r| r.pain));
    f.difficulty = trend(done().filter_map(|r| r.difficulty));
    f
}

/// Only the overall figures and the active days (a clinic's many patients): the same
/// numbers as [`compute`] gives for them, without the per-exercise and per-week ones.
pub fn overall(records: &[Record], period: &Period) -> (Figures, u32) {
    let as_of = period.end.min(period.now);
    let tz = &period.tz;
    let mut in_period: Vec<&Record> = records
        .iter()
        .filter(|r| r.due_from >= period.start && r.due_from < period.end)
        .collect();
    in_period.sort_by_key(|r| r.due_from);
    (
        figures(&in_period, as_of, tz),
        active_days(records, as_of, tz),
    )
}

fn active_days(records: &[Record], as_of: Timestamp, tz: &TimeZone) -> u32 {
    let window_start = as_of - Span::new().hours(24 * 30);
    let active: BTreeSet<Date> = records
        .iter()
        .filter(|r| r.status == Status::Completed)
        .filter_map(|r| r.completed_at)
        .filter(|c| *c > window_start && *c <= as_of)
        .map(|c| local_date(c, tz))
        .collect();
    active.len() as u32
}

/// Adherence over `period` of the occurrences of one program (or of all of a patient's
/// programs). `records` may hold occurrences outside the period: they count only for
/// the active days.
pub fn compute(records: &[Record], period: &Period) -> Adherence {
    let as_of = period.end.min(period.now);
    let tz = &period.tz;
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| {
        a.due_from
            .cmp(&b.due_from)
            .then_with(|| a.exercise.cmp(&b.exercise))
    });
    let in_period: Vec<&Record> = sorted
        .iter()
        .copied()
        .filter(|r| r.due_from >= period.start && r.due_from < period.end)
        .collect();

    let mut exercises: Vec<(String, Vec<&Record>)> = Vec::new();
    for r in &in_period {
        match exercises.iter_mut().find(|(e, _)| *e == r.exercise) {
            Some((_, list)) => list.push(r),
            None => exercises.push((r.exercise.clone(), vec![r])),
        }
    }
    let first_day = local_date(period.start, tz);
    let mut weeks: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
    for r in &in_period {
        let days = (local_date(r.due_from, tz) - first_day).get_days().max(0);
        weeks.entry(days as u32 / 7 + 1).or_default().push(r);
    }
    Adherence {
        as_of,
        overall: figures(&in_period, as_of, tz),
        exercises: exercises
            .into_iter()
            .map(|(e, list)| {
                let f = figures(&list, as_of, tz);
                (e, f)
            })
            .collect(),
        weeks: weeks
            .into_iter()
            .map(|(number, list)| Week {
                number,
                start: first_day
                    .checked_add(Span::new().days(i64::from(number - 1) * 7))
                    .unwrap_or(first_day),
                figures: figures(&list, as_of, tz),
            })
            .collect(),
        active_days_30: active_days(records, as_of, tz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn rec(ex: &str, day: u32, status: Status, done: Option<u32>, pain: Option<u8>) -> Record {
        let from = at(&format!("2026-03-{day:02}T00:00:00Z"));
        let until = at(&format!("2026-03-{:02}T00:00:00Z", day + 1));
        Record {
            exercise: ex.into(),
            due_from: from,
            due_until: until,
            status,
            completed_at: (status == Status::Completed).then_some(from + Span::new().hours(9)),
            done_volume: done,
            prescribed_volume: 30,
            pain,
            difficulty: None,
        }
    }

    #[test]
    fn a_hand_calculated_fortnight() {
        use Status::*;
        // two exercises a day for 10 days (March 2-11); A done 8 times, B done 5 times
        let mut records = Vec::new();
        for d in 2..12 {
            let a = if d == 4 || d == 9 { Failed } else { Completed };
            let b = if d % 2 == 0 { Completed } else { Failed };
            records.push(rec(
                "A",
                d,
                a,
                Some(if d == 2 { 15 } else { 30 }),
                (a == Completed).then_some((d % 5) as u8),
            ));
            records.push(rec("B", d, b, None, None));
        }
        // a future one and a cancelled one
        records.push(rec("A", 20, Requested, None, None));
        records.push(rec("B", 3, Cancelled, None, None));
        let period = Period {
            start: at("2026-03-02T00:00:00Z"),
            end: at("2026-03-30T00:00:00Z"),
            now: at("2026-03-12T10:00:00Z"),
            tz: TimeZone::UTC,
        };
        let a = compute(&records, &period);
        assert_eq!(a.as_of, period.now);
        let o = &a.overall;
        assert_eq!((o.due, o.completed, o.missed), (20, 13, 7));
        assert_eq!(o.exercise.percent(), Some(65.0));
        // days with both done: even days except 4 (2, 6, 8, 10) = 4 of 10
        assert_eq!(
            o.session,
            Ratio {
                numerator: 4,
                denominator: 10
            }
        );
        // dose: A 15 + 7 x 30, B 5 x 30, of 20 x 30
        assert_eq!(
            o.dose,
            Ratio {
                numerator: 15 + 210 + 150,
                denominator: 600
            }
        );
        assert_eq!(o.dose.percent(), Some(62.5));
        let (name, ex_a) = &a.exercises[0];
        assert_eq!(name, "A");
        assert_eq!((ex_a.due, ex_a.completed), (10, 8));
        // pain of A in order: days 2,3,5,6,7,8,10,11 -> 2,3,0,1,2,3,0,1
        let pain = o.pain.expect("pain");
        assert_eq!((pain.first, pain.last, pain.reports), (2, 1, 8));
        assert_eq!(pain.mean, 1.5);
        assert_eq!(a.weeks.len(), 3, "weeks 1, 2 and 3 (the future one)");
        assert_eq!(a.weeks[0].figures.due, 14);
        assert_eq!(a.weeks[1].figures.due, 6);
        assert_eq!(a.weeks[2].figures.due, 0);
        // every day but the 9th, when both were missed
        assert_eq!(a.active_days_30, 9);
        // the clinic's shortcut gives the same overall figures
        assert_eq!(overall(&records, &period), (a.overall.clone(), 9));
    }

    #[test]
    fn nothing_due_gives_no_percentages() {
        let period = Period {
            start: at("2026-03-02T00:00:00Z"),
            end: at("2026-03-09T00:00:00Z"),
            now: at("2026-03-01T00:00:00Z"),
            tz: TimeZone::UTC,
        };
        let a = compute(&[rec("A", 3, Status::Requested, None, None)], &period);
        assert_eq!(a.overall.due, 0);
        assert_eq!(a.overall.exercise.percent(), None);
        assert_eq!(a.overall.pain, None);
    }

    #[test]
    fn figures_of_a_group_add_up() {
        let period = Period {
            start: at("2026-03-02T00:00:00Z"),
            end: at("2026-03-09T00:00:00Z"),
            now: at("2026-03-09T00:00:00Z"),
            tz: TimeZone::UTC,
        };
        let one = compute(&[rec("A", 3, Status::Completed, None, None)], &period).overall;
        let two = compute(&[rec("B", 3, Status::Failed, None, None)], &period).overall;
        let mut all = Figures::default();
        all.add(&one);
        all.add(&two);
        assert_eq!((all.due, all.completed, all.missed), (2, 1, 1));
        assert_eq!(all.exercise.percent(), Some(50.0));
        assert_eq!(
            all.session,
            Ratio {
                numerator: 1,
                denominator: 2
            }
        );
    }

    #[test]
    fn over_completion_is_capped() {
        let period = Period {
            start: at("2026-03-02T00:00:00Z"),
            end: at("2026-03-09T00:00:00Z"),
            now: at("2026-03-09T00:00:00Z"),
            tz: TimeZone::UTC,
        };
        let a = compute(&[rec("A", 3, Status::Completed, Some(90), None)], &period);
        assert_eq!(a.overall.dose.percent(), Some(100.0));
    }
}
