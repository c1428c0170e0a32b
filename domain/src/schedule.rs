//! When an exercise is due: the part of FHIR `Timing` a therapist uses (times a day,
//! days of the week, times of day, program bounds, a total count), and its expansion
//! into due occurrences in the patient's time zone, correct across daylight-saving
//! changes. The time zone is passed in; nothing here reads a clock or a file.

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("times a day must be between 1 and 6")]
    TimesPerDay,
    #[error("days a week must be between 1 and 7")]
    DaysPerWeek,
    #[error("at least one weekday is needed")]
    NoWeekday,
    #[error("give one time of day for each time a day, all different")]
    TimesOfDay,
    #[error("the program must end after it starts")]
    Bounds,
    #[error("a program lasts 1 to 104 weeks")]
    Weeks,
    #[error("a total count is 1 to 10000")]
    Count,
}

/// On which days the exercise is due.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Days {
    Every,
    /// Specific weekdays, in order Monday first.
    On(Vec<Weekday>),
}

impl Days {
    /// Specific weekdays (duplicates ignored).
    pub fn on(days: &[Weekday]) -> Result<Days, ScheduleError> {
        let mut v: Vec<Weekday> = days.to_vec();
        v.sort_by_key(|d| d.to_monday_one_offset());
        v.dedup();
        match v.len() {
            0 => Err(ScheduleError::NoWeekday),
            7 => Ok(Days::Every),
            _ => Ok(Days::On(v)),
        }
    }

    /// `n` days a week, spread over the week: 1 Monday; 2 Monday, Thursday; 3 Monday,
    /// Wednesday, Friday; 4 Monday, Tuesday, Thursday, Friday; 5 Monday to Friday;
    /// 6 Monday to Saturday; 7 every day.
    pub fn per_week(n: u8) -> Result<Days, ScheduleError> {
        use Weekday::*;
        let days: &[Weekday] = match n {
            1 => &[Monday],
            2 => &[Monday, Thursday],
            3 => &[Monday, Wednesday, Friday],
            4 => &[Monday, Tuesday, Thursday, Friday],
            5 => &[Monday, Tuesday, Wednesday, Thursday, Friday],
            6 => &[Monday, Tuesday, Wednesday, Thursday, Friday, Saturday],
            7 => return Ok(Days::Every),
            _ => return Err(ScheduleError::DaysPerWeek),
        };
        Days::on(days)
    }

    pub fn includes(&self, day: Weekday) -> bool {
        match self {
            Days::Every => true,
            Days::On(days) => days.contains(&day),
        }
    }

    pub fn per_week_count(&self) -> u32 {
        match self {
            Days::Every => 7,
            Days::On(days) => days.len() as u32,
        }
    }
}

/// How long the program lasts. `Weeks` is a way to say it: a schedule keeps it as the
/// last day (`Until`), so that a schedule read back from FHIR equals the one written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duration {
    /// Through this date (inclusive).
    Until(Date),
    Weeks(u8),
    /// Until the program is completed or revoked.
    Open,
}

/// A schedule. Build with [`Schedule::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    per_day: u8,
    days: Days,
    times: Vec<Time>,
    start: Date,
    duration: Duration,
    count: Option<u32>,
}

/// The parts of a schedule.
#[derive(Debug, Clone)]
pub struct ScheduleParts {
    pub per_day: u8,
    pub days: Days,
    /// Empty (any time of the day), or one time per time a day.
    pub times: Vec<Time>,
    pub start: Date,
    pub duration: Duration,
    /// Stop after this many occurrences in all.
    pub count: Option<u32>,
}

/// One due occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Occurrence {
    /// The patient's local date.
    pub date: Date,
    /// Which time of that day (0 for the first).
    pub slot: u8,
    /// Due from this instant...
    pub due_from: Timestamp,
    /// ...until this one (exclusive): the next time of day, or the end of the local day.
    pub due_until: Timestamp,
}

impl Schedule {
    pub fn new(p: ScheduleParts) -> Result<Schedule, ScheduleError> {
        if !(1..=6).contains(&p.per_day) {
            return Err(ScheduleError::TimesPerDay);
        }
        let mut times = p.times.clone();
        times.sort();
        times.dedup();
        if !p.times.is_empty() && times.len() != usize::from(p.per_day) {
            return Err(ScheduleError::TimesOfDay);
        }
        match p.duration {
            Duration::Until(end) if end < p.start => return Err(ScheduleError::Bounds),
            Duration::Weeks(w) if !(1..=104).contains(&w) => return Err(ScheduleError::Weeks),
            _ => {}
        }
        if let Some(c) = p.count
            && !(1..=10_000).contains(&c)
        {
            return Err(ScheduleError::Count);
        }
        let duration = match p.duration {
            Duration::Weeks(w) => Duration::Until(
                p.start
                    .checked_add((i64::from(w) * 7 - 1).days())
                    .map_err(|_| ScheduleError::Weeks)?,
            ),
            other => other,
        };
        Ok(Schedule {
            per_day: p.per_day,
            days: p.days,
            times,
            start: p.start,
            duration,
            count: p.count,
        })
    }

    pub fn per_day(&self) -> u8 {
        self.per_day
    }

    pub fn days(&self) -> &Days {
        &self.days
    }

    pub fn times(&self) -> &[Time] {
        &self.times
    }

    pub fn start(&self) -> Date {
        self.start
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// The last day of the program, if it has one.
    pub fn last_day(&self) -> Option<Date> {
        match self.duration {
            Duration::Until(d) => Some(d),
            // Normalised to `Until` by `new`.
            Duration::Weeks(_) | Duration::Open => None,
        }
    }

    /// The length in whole weeks, when the program lasts whole weeks.
    pub fn weeks(&self) -> Option<i64> {
        let last = self.last_day()?;
        let days = i64::from(self.start.until(last).ok()?.get_days()) + 1;
        (days % 7 == 0).then_some(days / 7)
    }

    /// The occurrences due from `from` (inclusive) to `to` (exclusive), in order, for a
    /// patient in `tz`. A window that starts in a daylight-saving gap starts at the first
    /// instant after it; in a repeated hour, at the first of the two.
    pub fn expand(&self, tz: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Occurrence> {
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let last_wanted = to.to_zoned(tz.clone()).date();
        let last = match self.last_day() {
            Some(d) => d.min(last_wanted),
            None => last_wanted,
        };
        // With a total count, occurrences are numbered from the program start.
        let first_day = if self.count.is_some() {
            self.start
        } else {
            self.start.max(
                from.to_zoned(tz.clone())
                    .date()
                    .yesterday()
                    .unwrap_or(self.start),
            )
        };
        let mut produced: u32 = 0;
        let mut day = first_day;
        while day <= last {
            if self.days.includes(day.weekday()) {
                for slot in 0..self.per_day {
                    if let Some(limit) = self.count
                        && produced >= limit
                    {
                        return out;
                    }
                    produced += 1;
                    let Some(occ) = self.occurrence(tz, day, slot) else {
                        continue;
                    };
                    if occ.due_from >= from && occ.due_from < to {
                        out.push(occ);
                    }
                }
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        out
    }

    fn occurrence(&self, tz: &TimeZone, day: Date, slot: u8) -> Option<Occurrence> {
        let day_start = day.to_zoned(tz.clone()).ok()?.timestamp();
        let day_end = day.tomorrow().ok()?.to_zoned(tz.clone()).ok()?.timestamp();
        let (due_from, due_until) = if self.times.is_empty() {
            (day_start, day_end)
        } else {
            let at = |t: Time| {
                day.to_datetime(t)
                    .to_zoned(tz.clone())
                    .ok()
                    .map(|z| z.timestamp())
            };
            let i = usize::from(slot);
            let from = at(self.times[i])?;
            let until = match self.times.get(i + 1) {
                Some(next) => at(*next)?,
                None => day_end,
            };
            (from, until)
        };
        Some(Occurrence {
            date: day,
            slot,
            due_from,
            due_until,
        })
    }
}

fn times_a_day(n: u8) -> String {
    match n {
        1 => "once a day".into(),
        2 => "twice a day".into(),
        n => format!("{n} times a day"),
    }
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl fmt::Display for Schedule {
    /// The schedule in words: "twice a day at 08:00 and 18:00, every day for 6 weeks".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = times_a_day(self.per_day);
        if !self.times.is_empty() {
            let times: Vec<String> = self
                .times
                .iter()
                .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
                .collect();
            s.push_str(&format!(" at {}", list(&times)));
        }
        match &self.days {
            Days::Every => s.push_str(", every day"),
            Days::On(days) => {
                let names: Vec<String> =
                    days.iter().map(|d| weekday_name(*d).to_string()).collect();
                s.push_str(&format!(", on {}", list(&names)));
            }
        }
        match (self.weeks(), self.last_day()) {
            (Some(1), _) => s.push_str(" for 1 week"),
            (Some(w), _) => s.push_str(&format!(" for {w} weeks")),
            (None, Some(d)) => s.push_str(&format!(" from {} to {d}", self.start)),
            (None, None) => s.push_str(&format!(" from {}", self.start)),
        }
        if let Some(c) = self.count {
            s.push_str(&format!(", {c} times in all"));
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn schedule(p: ScheduleParts) -> Schedule {
        Schedule::new(p).unwrap_or_else(|e| panic!("valid schedule: {e}"))
    }

    fn parts(per_day: u8, days: Days, start: Date, duration: Duration) -> ScheduleParts {
        ScheduleParts {
            per_day,
            days,
            times: Vec::new(),
            start,
            duration,
            count: None,
        }
    }

    fn instant(tz: &TimeZone, d: Date) -> Timestamp {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or_default()
    }

    #[test]
    fn refuses_invalid_schedules() {
        let start = date(2026, 11, 2);
        assert_eq!(
            Schedule::new(parts(0, Days::Every, start, Duration::Open)),
            Err(ScheduleError::TimesPerDay)
        );
        assert_eq!(
            Schedule::new(parts(7, Days::Every, start, Duration::Open)),
            Err(ScheduleError::TimesPerDay)
        );
        assert_eq!(Days::per_week(0), Err(ScheduleError::DaysPerWeek));
        assert_eq!(Days::on(&[]), Err(ScheduleError::NoWeekday));
        assert_eq!(
            Schedule::new(parts(
                1,
                Days::Every,
                start,
                Duration::Until(date(2026, 11, 1))
            )),
            Err(ScheduleError::Bounds)
        );
        assert_eq!(
            Schedule::new(parts(1, Days::Every, start, Duration::Weeks(0))),
            Err(ScheduleError::Weeks)
        );
        let mut p = parts(2, Days::Every, start, Duration::Open);
        p.times = vec![Time::constant(8, 0, 0, 0)];
        assert_eq!(Schedule::new(p.clone()), Err(ScheduleError::TimesOfDay));
        p.times = vec![Time::constant(8, 0, 0, 0), Time::constant(8, 0, 0, 0)];
        assert_eq!(Schedule::new(p), Err(ScheduleError::TimesOfDay));
    }

    #[test]
    fn in_words() {
        let mut p = parts(2, Days::Every, date(2026, 11, 2), Duration::Weeks(6));
        assert_eq!(
            schedule(p.clone()).to_string(),
            "twice a day, every day for 6 weeks"
        );
        p.times = vec![Time::constant(18, 0, 0, 0), Time::constant(8, 0, 0, 0)];
        p.days = Days::per_week(3).unwrap_or(Days::Every);
        p.count = Some(20);
        assert_eq!(
            schedule(p).to_string(),
            "twice a day at 08:00 and 18:00, on Monday, Wednesday and Friday for 6 weeks, 20 times in all"
        );
        let p = parts(
            1,
            Days::Every,
            date(2026, 11, 2),
            Duration::Until(date(2026, 12, 24)),
        );
        assert_eq!(
            schedule(p).to_string(),
            "once a day, every day from 2026-11-02 to 2026-12-24"
        );
    }

    #[test]
    fn six_weeks_twice_daily() {
        let z = tz("Europe/Berlin");
        let s = schedule(parts(2, Days::Every, date(2026, 11, 2), Duration::Weeks(6)));
        assert_eq!(s.last_day(), Some(date(2026, 12, 13)));
        let all = s.expand(
            &z,
            instant(&z, date(2026, 1, 1)),
            instant(&z, date(2027, 6, 1)),
        );
        assert_eq!(all.len(), 6 * 7 * 2);
        assert_eq!(all[0].date, date(2026, 11, 2));
        assert_eq!(all.last().map(|o| o.date), Some(date(2026, 12, 13)));
        // without times of day, each occurrence is due the whole local day
        assert_eq!(all[0].due_from, instant(&z, date(2026, 11, 2)));
        assert_eq!(all[0].due_until, instant(&z, date(2026, 11, 3)));
    }

    #[test]
    fn daylight_saving_days() {
        let ny = tz("America/New_York");
        let mut p = parts(2, Days::Every, date(2026, 3, 1), Duration::Weeks(52));
        p.times = vec![Time::constant(2, 30, 0, 0), Time::constant(20, 0, 0, 0)];
        let s = schedule(p);
        // 2026-03-08: 02:30 does not exist in New York; the window starts at 03:30 EDT
        let spring = s.expand(
            &ny,
            instant(&ny, date(2026, 3, 8)),
            instant(&ny, date(2026, 3, 9)),
        );
        assert_eq!(spring.len(), 2);
        let first = spring[0].due_from.to_zoned(ny.clone());
        assert_eq!((first.hour(), first.minute()), (3, 30));
        // a 23-hour day still ends at local midnight
        assert_eq!(spring[1].due_until, instant(&ny, date(2026, 3, 9)));
        assert_eq!(
            spring[1]
                .due_until
                .duration_since(instant(&ny, date(2026, 3, 8)))
                .as_secs(),
            23 * 3600
        );
        // 2026-11-01: 01:00-02:00 happens twice; a 25-hour day
        let autumn = s.expand(
            &ny,
            instant(&ny, date(2026, 11, 1)),
            instant(&ny, date(2026, 11, 2)),
        );
        assert_eq!(autumn.len(), 2);
        assert_eq!(
            autumn[1]
                .due_until
                .duration_since(instant(&ny, date(2026, 11, 1)))
                .as_secs(),
            25 * 3600
        );
    }

    #[test]
    fn count_limits_from_the_start() {
        let z = tz("UTC");
        let mut p = parts(3, Days::Every, date(2026, 11, 2), Duration::Open);
        p.count = Some(10);
        let s = schedule(p);
        let all = s.expand(
            &z,
            instant(&z, date(2026, 1, 1)),
            instant(&z, date(2027, 1, 1)),
        );
        assert_eq!(all.len(), 10);
        // a window after the start sees only what is left of the count
        let later = s.expand(
            &z,
            instant(&z, date(2026, 11, 4)),
            instant(&z, date(2027, 1, 1)),
        );
        assert_eq!(later.len(), 10 - 6);
    }

    const ZONES: &[&str] = &[
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Sydney",
        "Asia/Kolkata",
        "America/Santiago",
    ];

    fn weekday_set() -> impl Strategy<Value = Days> {
        prop::collection::vec(0i8..7, 1..7).prop_map(|v| {
            let days: Vec<Weekday> = v
                .into_iter()
                .map(|i| Weekday::from_monday_zero_offset(i).unwrap_or(Weekday::Monday))
                .collect();
            Days::on(&days).unwrap_or(Days::Every)
        })
    }

    proptest! {
        /// Every full week inside the program has per_day × days-a-week occurrences, in any
        /// time zone, across daylight-saving changes.
        #[test]
        fn occurrences_per_full_week(
            zone in 0usize..ZONES.len(),
            per_day in 1u8..=6,
            days in weekday_set(),
            start_offset in 0i64..730,
            weeks in 1u8..=30,
            with_times in any::<bool>(),
        ) {
            let z = tz(ZONES[zone]);
            let start = date(2025, 1, 1).checked_add(start_offset.days()).unwrap_or(date(2025, 1, 1));
            let mut p = parts(per_day, days.clone(), start, Duration::Weeks(weeks));
            if with_times {
                p.times = (0..per_day).map(|i| Time::constant(6 + 2 * i as i8, 15, 0, 0)).collect();
            }
            let s = schedule(p);
            let all = s.expand(&z, instant(&z, date(2024, 1, 1)), instant(&z, date(2028, 1, 1)));
            prop_assert_eq!(all.len() as u32, u32::from(weeks) * days.per_week_count() * u32::from(per_day));
            let last = s.last_day().unwrap_or(start);
            for w in all.windows(2) {
                // without times of day, the occurrences of a day share its window
                prop_assert!(w[0].due_from < w[1].due_from || (!with_times && w[0].date == w[1].date));
                prop_assert!(w[0] < w[1]);
            }
            for o in &all {
                prop_assert!(o.date >= start && o.date <= last);
                prop_assert!(days.includes(o.date.weekday()));
                prop_assert!(o.due_from < o.due_until);
                prop_assert_eq!(o.due_from.to_zoned(z.clone()).date() >= o.date, true);
            }
        }

        /// Expanding in pieces gives the same occurrences as expanding at once.
        #[test]
        fn windows_compose(
            zone in 0usize..ZONES.len(),
            per_day in 1u8..=3,
            split_days in 1i64..60,
            count in proptest::option::of(1u32..200),
        ) {
            let z = tz(ZONES[zone]);
            let mut p = parts(per_day, Days::Every, date(2026, 3, 1), Duration::Weeks(12));
            p.count = count;
            let s = schedule(p);
            let (a, c) = (instant(&z, date(2026, 1, 1)), instant(&z, date(2027, 1, 1)));
            let b = instant(&z, date(2026, 3, 1).checked_add(split_days.days()).unwrap_or(date(2026, 3, 1)));
            let whole = s.expand(&z, a, c);
            let mut parts = s.expand(&z, a, b);
            parts.extend(s.expand(&z, b, c));
            prop_assert_eq!(whole, parts);
        }
    }
}
