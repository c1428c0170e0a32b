//! Schedule expansion: the occurrences of a 12-week program of 10 daily exercises
//! (840 due occurrences), as the adherence computation needs them.

use criterion::{Criterion, criterion_group, criterion_main};
use domain::schedule::{Days, Duration, Schedule, ScheduleParts};
use jiff::civil::{Time, date};
use jiff::tz::TimeZone;

fn expansion(c: &mut Criterion) {
    let tz = TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC);
    let schedules: Vec<Schedule> = (0..10)
        .filter_map(|i| {
            Schedule::new(ScheduleParts {
                per_day: 1,
                days: Days::Every,
                times: vec![Time::constant(7 + i, 0, 0, 0)],
                start: date(2026, 9, 7),
                duration: Duration::Weeks(12),
                count: None,
            })
            .ok()
        })
        .collect();
    let from = date(2026, 9, 1)
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or_default();
    let to = date(2026, 12, 31)
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or_default();
    c.bench_function("expand 12 weeks x 10 exercises (840 occurrences)", |b| {
        b.iter(|| {
            schedules
                .iter()
                .map(|s| s.expand(&tz, from, to).len())
                .sum::<usize>()
        })
    });
}

criterion_group!(benches, expansion);
criterion_main!(benches);
