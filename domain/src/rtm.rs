//! Remote therapeutic monitoring (RTM) of a home exercise program, musculoskeletal
//! family, by the US CPT rules in force in [`RULES_YEAR`] (sources and limits:
//! `docs/rtm.md`; this is not billing advice):
//!
//! - an episode is cut into consecutive **periods** of 30 local dates from its start
//!   (day 1 = the start date), in the patient's time zone; a change of daylight saving
//!   time does not move a bound, because bounds are dates;
//! - **days with data** = local dates of the period with at least one data event;
//! - **device supply**: 16-30 days -> 98977, 2-15 days -> 98985, fewer -> no code;
//! - **initial set-up and patient education** (98975): once per episode, in the first
//!   period, when it has at least 2 days with data;
//! - **treatment management** (clinician minutes), only when the period has a
//!   real-time interactive communication (a call or a video visit: CMS reads the CPT
//!   descriptor's "interactive communication" as real-time, synchronous audio):
//!   10-19 minutes -> 98979; 20 or more -> 98980, plus 98981 for each further full
//!   20 minutes;
//! - **interactive communication** is reported too when the period has a message
//!   exchange (at least one message from the clinician and one from the patient):
//!   some payers accept it; the codes above do not count on it.
//!
//! CPT counts treatment management per calendar month; the product counts it per
//! period of the episode, so that one figure covers both. A biller checks the calendar
//! months before claiming (see `docs/rtm.md`).
//!
//! Events (data, minutes, contacts) count in the period of their local date and
//! nowhere else. The codes of a period that is not over yet are those its events
//! support so far.

use jiff::Span;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// The year of the CPT rules applied, stated with every result.
pub const RULES_YEAR: u16 = 2026;

/// Local dates in a period.
pub const PERIOD_DAYS: u32 = 30;

/// Fewest days with data for the 2-15 day device supply code and for the set-up code.
pub const MIN_DATA_DAYS: u32 = 2;

/// Fewest days with data for the 16-30 day device supply code.
pub const FULL_DATA_DAYS: u32 = 16;

/// Fewest minutes for the first treatment management code (10-19 minutes).
pub const MIN_MANAGEMENT_MINUTES: u32 = 10;

/// Minutes of the 20-minute treatment management code and of each additional unit.
pub const MANAGEMENT_STEP_MINUTES: u32 = 20;

/// Clinician time spent on a patient's treatment management.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When the time was spent (its local date puts it in a period).
    pub at: Timestamp,
    /// How long.
    pub minutes: u32,
    /// Who spent it (a Practitioner reference or name).
    pub who: String,
    /// What was done.
    pub what: String,
}

/// The kind of a contact between clinician and patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactKind {
    /// A live call or video visit.
    Synchronous,
    /// A message sent by the clinician to the patient.
    MessageFromClinician,
    /// A message sent by the patient to the clinician.
    MessageFromPatient,
}

/// A logged contact between clinician and patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// When it took place (or the message was sent).
    pub at: Timestamp,
    /// What it was.
    pub kind: ContactKind,
}

/// What an episode's periods are computed from; in any order, and possibly with events
/// outside the periods asked for (they are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inputs {
    /// Instants of data events (exercise reports, symptom reports).
    pub data: Vec<Timestamp>,
    /// Treatment management time.
    pub entries: Vec<Entry>,
    /// Contacts between clinician and patient.
    pub contacts: Vec<Contact>,
}

/// A CPT code a period supports, with its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The CPT code.
    pub code: &'static str,
    /// Units (more than 1 only for the additional 20 minutes code).
    pub units: u32,
    /// A short description in the product's own words (not the CPT descriptor).
    pub display: &'static str,
}

/// 98975: initial set-up and patient education, once per episode.
pub const SET_UP: Code = Code {
    code: "98975",
    units: 1,
    display: "RTM initial set-up and patient education",
};

/// 98977: device supply, musculoskeletal, 16-30 days with data in the period.
pub const SUPPLY_16_30_DAYS: Code = Code {
    code: "98977",
    units: 1,
    display: "RTM device supply, musculoskeletal, 16-30 days",
};

/// 98985: device supply, musculoskeletal, 2-15 days with data in the period.
pub const SUPPLY_2_15_DAYS: Code = Code {
    code: "98985",
    units: 1,
    display: "RTM device supply, musculoskeletal, 2-15 days",
};

/// 98979: treatment management, 10-19 minutes.
pub const MANAGEMENT_10_MINUTES: Code = Code {
    code: "98979",
    units: 1,
    display: "RTM treatment management, 10-19 minutes",
};

/// 98980: treatment management, first 20 minutes.
pub const MANAGEMENT_20_MINUTES: Code = Code {
    code: "98980",
    units: 1,
    display: "RTM treatment management, first 20 minutes",
};

/// 98981: treatment management, each additional 20 minutes (units = how many).
pub const MANAGEMENT_ADDITIONAL_20_MINUTES: Code = Code {
    code: "98981",
    units: 1,
    display: "RTM treatment management, each additional 20 minutes",
};

/// One period of an episode with its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodFigures {
    /// 1 for the period that starts on the episode's start date.
    pub number: u32,
    /// Its first local date.
    pub start: Date,
    /// Its last local date (inclusive).
    pub end: Date,
    /// Whether it is over as of the day asked for (its last date is before it).
    pub complete: bool,
    /// Local dates with at least one data event.
    pub days_with_data: u32,
    /// Those dates, in order.
    pub data_days: Vec<Date>,
    /// Treatment management minutes.
    pub minutes: u32,
    /// The treatment management entries, in time order.
    pub entries: Vec<Entry>,
    /// Whether the period has an interactive communication: a real-time contact or a
    /// message exchange.
    pub interactive: bool,
    /// Whether the period has a real-time contact (a call or a video visit): the
    /// treatment-management codes need one.
    pub real_time: bool,
    /// The codes its figures support, set-up first, then device supply, then treatment
    /// management.
    pub codes: Vec<Code>,
}

/// Whole days from `a` to `b` (negative when `b` is earlier).
fn days_between(a: Date, b: Date) -> i64 {
    b.duration_since(a).as_secs() / 86_400
}

/// The numbers of the first and last periods that overlap `[from, to]`.
fn overlapping(start: Date, from: Date, to: Date) -> Option<(u32, u32)> {
    if to < from || to < start {
        return None;
    }
    let number = |d: Date| {
        u32::try_from(days_between(start, d).max(0) / i64::from(PERIOD_DAYS))
            .map_or(u32::MAX, |n| n.saturating_add(1))
    };
    Some((number(from), number(to)))
}

/// The index in `bounds` (sorted, disjoint) of the period holding `date`.
fn period_of(bounds: &[(Date, Date)], date: Date) -> Option<usize> {
    let after = bounds.partition_point(|(s, _)| *s <= date);
    let i = after.checked_sub(1)?;
    (date <= bounds[i].1).then_some(i)
}

/// The codes of a period's figures.
fn codes(number: u32, days: u32, minutes: u32, real_time: bool) -> Vec<Code> {
    let mut codes = Vec::new();
    if number == 1 && days >= MIN_DATA_DAYS {
        codes.push(SET_UP);
    }
    if days >= FULL_DATA_DAYS {
        codes.push(SUPPLY_16_30_DAYS);
    } else if days >= MIN_DATA_DAYS {
        codes.push(SUPPLY_2_15_DAYS);
    }
    if real_time {
        if minutes >= MANAGEMENT_STEP_MINUTES {
            codes.push(MANAGEMENT_20_MINUTES);
            let additional = (minutes - MANAGEMENT_STEP_MINUTES) / MANAGEMENT_STEP_MINUTES;
            if additional > 0 {
                codes.push(Code {
                    units: additional,
                    ..MANAGEMENT_ADDITIONAL_20_MINUTES
                });
            }
        } else if minutes >= MIN_MANAGEMENT_MINUTES {
            codes.push(MANAGEMENT_10_MINUTES);
        }
    }
    codes
}

/// The periods of an episode that overlap [from, to] (local dates), with their figures, as of `today`.
/// Periods are counted from `start` (day 1 = start), 30 local days each, in `tz` (a DST change
/// does not move the period bounds: they are dates). Events outside the period are ignored.
pub fn periods(
    start: Date,
    tz: &TimeZone,
    from: Date,
    to: Date,
    today: Date,
    inputs: &Inputs,
) -> Vec<PeriodFigures> {
    let Some((first, last)) = overlapping(start, from, to) else {
        return Vec::new();
    };
    let mut bounds: Vec<(Date, Date)> = Vec::new();
    for number in first..=last {
        let offset = i64::from(number - 1) * i64::from(PERIOD_DAYS);
        let (Ok(s), Ok(e)) = (
            start.checked_add(Span::new().days(offset)),
            start.checked_add(Span::new().days(offset + i64::from(PERIOD_DAYS) - 1)),
        ) else {
            // past the last representable date: no period there
            break;
        };
        bounds.push((s, e));
    }
    let (Some(&(lo, _)), Some(&(_, hi))) = (bounds.first(), bounds.last()) else {
        return Vec::new();
    };
    let local = |t: Timestamp| tz.to_datetime(t).date();

    // data: local dates once, sorted once, each period a slice of them
    let mut days: Vec<Date> = inputs
        .data
        .iter()
        .map(|t| local(*t))
        .filter(|d| *d >= lo && *d <= hi)
        .collect();
    days.sort_unstable();
    days.dedup();

    let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); bounds.len()];
    for e in &inputs.entries {
        if let Some(i) = period_of(&bounds, local(e.at)) {
            entries[i].push(e.clone());
        }
    }
    // per period: synchronous, from the clinician, from the patient
    let mut contacts = vec![[false; 3]; bounds.len()];
    for c in &inputs.contacts {
        if let Some(i) = period_of(&bounds, local(c.at)) {
            let slot = match c.kind {
                ContactKind::Synchronous => 0,
                ContactKind::MessageFromClinician => 1,
                ContactKind::MessageFromPatient => 2,
            };
            contacts[i][slot] = true;
        }
    }

    bounds
        .iter()
        .zip(entries)
        .zip(contacts)
        .zip(first..)
        .map(
            |(((&(s, e), mut entries), [sync, clinician, patient]), number)| {
                let a = days.partition_point(|d| *d < s);
                let b = days.partition_point(|d| *d <= e);
                let data_days = days[a..b].to_vec();
                let days_with_data = u32::try_from(data_days.len()).unwrap_or(u32::MAX);
                entries.sort_by_key(|x| x.at);
                let minutes = entries
                    .iter()
                    .fold(0u32, |sum, x| sum.saturating_add(x.minutes));
                let interactive = sync || (clinician && patient);
                let real_time = sync;
                PeriodFigures {
                    number,
                    start: s,
                    end: e,
                    complete: e < today,
                    days_with_data,
                    data_days,
                    minutes,
                    entries,
                    interactive,
                    real_time,
                    codes: codes(number, days_with_data, minutes, real_time),
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// An instant at `hh:mm` local time on `d` in `tz`.
    fn local(d: Date, hour: i8, minute: i8, tz: &TimeZone) -> Timestamp {
        d.at(hour, minute, 0, 0)
            .to_zoned(tz.clone())
            .expect("local time")
            .timestamp()
    }

    fn day(start: Date, n: i64) -> Date {
        start.checked_add(Span::new().days(n - 1)).expect("date")
    }

    fn data_on(start: Date, days: impl IntoIterator<Item = i64>) -> Vec<Timestamp> {
        days.into_iter()
            .map(|n| local(day(start, n), 12, 0, &TimeZone::UTC))
            .collect()
    }

    fn code_list(p: &PeriodFigures) -> Vec<(&'static str, u32)> {
        p.codes.iter().map(|c| (c.code, c.units)).collect()
    }

    fn entry(t: Timestamp, minutes: u32) -> Entry {
        Entry {
            at: t,
            minutes,
            who: "Practitioner/pt1".into(),
            what: "reviewed exercise reports, adjusted the program".into(),
        }
    }

    const START: Date = date(2026, 1, 1);
    const LATER: Date = date(2027, 1, 1);

    fn one(inputs: &Inputs) -> PeriodFigures {
        let mut ps = periods(START, &TimeZone::UTC, START, START, LATER, inputs);
        assert_eq!(ps.len(), 1);
        ps.remove(0)
    }

    #[test]
    fn rtm_day_30_is_in_the_first_period_day_31_in_the_second() {
        let inputs = Inputs {
            data: data_on(START, [30, 31]),
            ..Inputs::default()
        };
        let ps = periods(
            START,
            &TimeZone::UTC,
            START,
            date(2026, 2, 15),
            LATER,
            &inputs,
        );
        assert_eq!(ps.len(), 2);
        assert_eq!(
            (ps[0].number, ps[0].start, ps[0].end),
            (1, date(2026, 1, 1), date(2026, 1, 30))
        );
        assert_eq!(
            (ps[1].number, ps[1].start, ps[1].end),
            (2, date(2026, 1, 31), date(2026, 3, 1))
        );
        assert_eq!(ps[0].data_days, vec![date(2026, 1, 30)]);
        assert_eq!(ps[1].data_days, vec![date(2026, 1, 31)]);
        // the last minute of day 30 and the first of day 31
        let inputs = Inputs {
            data: vec![at("2026-01-30T23:59:59Z"), at("2026-01-31T00:00:00Z")],
            ..Inputs::default()
        };
        let ps = periods(
            START,
            &TimeZone::UTC,
            START,
            date(2026, 2, 1),
            LATER,
            &inputs,
        );
        assert_eq!((ps[0].days_with_data, ps[1].days_with_data), (1, 1));
    }

    #[test]
    fn rtm_device_supply_thresholds() {
        let figures = |n: i64| {
            one(&Inputs {
                data: data_on(START, 1..=n),
                ..Inputs::default()
            })
        };
        let p = figures(0);
        assert_eq!((p.days_with_data, code_list(&p)), (0, vec![]));
        let p = figures(1);
        assert_eq!((p.days_with_data, code_list(&p)), (1, vec![]));
        let p = figures(2);
        assert_eq!(
            (p.days_with_data, code_list(&p)),
            (2, vec![("98975", 1), ("98985", 1)])
        );
        let p = figures(15);
        assert_eq!(
            (p.days_with_data, code_list(&p)),
            (15, vec![("98975", 1), ("98985", 1)])
        );
        let p = figures(16);
        assert_eq!(
            (p.days_with_data, code_list(&p)),
            (16, vec![("98975", 1), ("98977", 1)])
        );
        let p = figures(30);
        assert_eq!(
            (p.days_with_data, code_list(&p)),
            (30, vec![("98975", 1), ("98977", 1)])
        );
    }

    #[test]
    fn rtm_several_events_on_a_date_count_once() {
        let d = day(START, 3);
        let p = one(&Inputs {
            data: vec![
                local(d, 8, 0, &TimeZone::UTC),
                local(d, 20, 0, &TimeZone::UTC),
                local(d, 8, 0, &TimeZone::UTC),
            ],
            ..Inputs::default()
        });
        assert_eq!((p.days_with_data, p.data_days), (1, vec![d]));
    }

    #[test]
    fn rtm_set_up_only_once_per_episode() {
        // every day of three periods has data: set-up only in the first
        let inputs = Inputs {
            data: data_on(START, 1..=90),
            ..Inputs::default()
        };
        let ps = periods(START, &TimeZone::UTC, START, day(START, 90), LATER, &inputs);
        assert_eq!(ps.len(), 3);
        assert_eq!(code_list(&ps[0]), vec![("98975", 1), ("98977", 1)]);
        assert_eq!(code_list(&ps[1]), vec![("98977", 1)]);
        assert_eq!(code_list(&ps[2]), vec![("98977", 1)]);
        // not moved to a later period when the first has too few days
        let inputs = Inputs {
            data: data_on(START, [5, 31, 32, 33]),
            ..Inputs::default()
        };
        let ps = periods(START, &TimeZone::UTC, START, day(START, 60), LATER, &inputs);
        assert_eq!(code_list(&ps[0]), vec![]);
        assert_eq!(code_list(&ps[1]), vec![("98985", 1)]);
        // a range that starts after the first period has no set-up
        let ps = periods(
            START,
            &TimeZone::UTC,
            day(START, 31),
            day(START, 31),
            LATER,
            &Inputs {
                data: data_on(START, 1..=60),
                ..Inputs::default()
            },
        );
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].number, 2);
        assert_eq!(code_list(&ps[0]), vec![("98977", 1)]);
    }

    #[test]
    fn rtm_treatment_management_minutes() {
        let sync = vec![Contact {
            at: local(day(START, 10), 15, 0, &TimeZone::UTC),
            kind: ContactKind::Synchronous,
        }];
        let cases: [(u32, Vec<(&str, u32)>); 7] = [
            (9, vec![]),
            (10, vec![("98979", 1)]),
            (19, vec![("98979", 1)]),
            (20, vec![("98980", 1)]),
            (39, vec![("98980", 1)]),
            (40, vec![("98980", 1), ("98981", 1)]),
            (60, vec![("98980", 1), ("98981", 2)]),
        ];
        for (minutes, expected) in cases {
            // the minutes in two entries, on two dates
            let entries = vec![
                entry(local(day(START, 4), 9, 0, &TimeZone::UTC), minutes / 2),
                entry(
                    local(day(START, 20), 9, 0, &TimeZone::UTC),
                    minutes - minutes / 2,
                ),
            ];
            let with = one(&Inputs {
                entries: entries.clone(),
                contacts: sync.clone(),
                ..Inputs::default()
            });
            assert_eq!(with.minutes, minutes);
            assert!(with.interactive);
            assert_eq!(code_list(&with), expected, "{minutes} minutes, interactive");
            let without = one(&Inputs {
                entries,
                ..Inputs::default()
            });
            assert_eq!(without.minutes, minutes);
            assert!(!without.interactive);
            assert_eq!(code_list(&without), vec![], "{minutes} minutes, no contact");
        }
    }

    #[test]
    fn rtm_entries_are_kept_in_time_order_and_outside_ones_ignored() {
        let late = entry(local(day(START, 20), 9, 0, &TimeZone::UTC), 7);
        let early = entry(local(day(START, 2), 9, 0, &TimeZone::UTC), 5);
        let outside = entry(local(day(START, 31), 9, 0, &TimeZone::UTC), 30);
        let before = entry(at("2025-12-31T23:00:00Z"), 30);
        let p = one(&Inputs {
            entries: vec![late.clone(), outside, early.clone(), before],
            ..Inputs::default()
        });
        assert_eq!(p.entries, vec![early, late]);
        assert_eq!(p.minutes, 12);
    }

    #[test]
    fn rtm_messages_alone_bill_no_treatment_management() {
        let start = Date::constant(2026, 1, 1);
        let at = |d: i8, h: i8| {
            Date::constant(2026, 1, d)
                .at(h, 0, 0, 0)
                .to_zoned(TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or_default()
        };
        let entry = Entry {
            at: at(3, 10),
            minutes: 25,
            who: "Practitioner/t".into(),
            what: "Reviewed".into(),
        };
        let inputs = |contacts: Vec<Contact>| Inputs {
            data: Vec::new(),
            entries: vec![entry.clone()],
            contacts,
        };
        let messages = vec![
            Contact {
                at: at(4, 10),
                kind: ContactKind::MessageFromClinician,
            },
            Contact {
                at: at(4, 12),
                kind: ContactKind::MessageFromPatient,
            },
        ];
        let p = &periods(
            start,
            &TimeZone::UTC,
            start,
            start,
            start,
            &inputs(messages),
        )[0];
        assert!(p.interactive && !p.real_time);
        assert!(p.codes.is_empty(), "{:?}", p.codes);
        let call = vec![Contact {
            at: at(5, 10),
            kind: ContactKind::Synchronous,
        }];
        let p = &periods(start, &TimeZone::UTC, start, start, start, &inputs(call))[0];
        assert!(p.interactive && p.real_time);
        assert_eq!(
            p.codes.iter().map(|c| c.code).collect::<Vec<_>>(),
            ["98980"]
        );
    }

    #[test]
    fn rtm_interactive_communication() {
        let msg = |n: i64, kind| Contact {
            at: local(day(START, n), 10, 0, &TimeZone::UTC),
            kind,
        };
        let interactive = |contacts: Vec<Contact>| {
            one(&Inputs {
                contacts,
                ..Inputs::default()
            })
            .interactive
        };
        assert!(!interactive(vec![]));
        assert!(interactive(vec![msg(3, ContactKind::Synchronous)]));
        assert!(!interactive(vec![msg(
            3,
            ContactKind::MessageFromClinician
        )]));
        assert!(!interactive(vec![msg(3, ContactKind::MessageFromPatient)]));
        assert!(interactive(vec![
            msg(3, ContactKind::MessageFromClinician),
            msg(9, ContactKind::MessageFromPatient),
        ]));
        // the patient's answer in the next period: no exchange in this one
        assert!(!interactive(vec![
            msg(30, ContactKind::MessageFromClinician),
            msg(31, ContactKind::MessageFromPatient),
        ]));
        // a call in the next period does not count here
        assert!(!interactive(vec![msg(31, ContactKind::Synchronous)]));
    }

    #[test]
    fn rtm_dst_changes_in_new_york() {
        let ny = TimeZone::get("America/New_York").expect("tz");
        // the period crosses the change to daylight time (2026-03-08)
        let start = date(2026, 2, 20);
        let inputs = Inputs {
            data: vec![
                // 23:30 the day before each change: the local date, not UTC's
                local(date(2026, 3, 7), 23, 30, &ny),
                local(date(2026, 10, 31), 23, 30, &ny),
                // last and first local minutes around a period bound
                local(date(2026, 3, 21), 23, 59, &ny),
                local(date(2026, 3, 22), 0, 1, &ny),
            ],
            ..Inputs::default()
        };
        assert_eq!(inputs.data[0], at("2026-03-08T04:30:00Z"));
        assert_eq!(inputs.data[1], at("2026-11-01T03:30:00Z"));
        let ps = periods(start, &ny, start, date(2026, 12, 31), LATER, &inputs);
        assert_eq!((ps[0].start, ps[0].end), (start, date(2026, 3, 21)));
        assert_eq!(ps[0].data_days, vec![date(2026, 3, 7), date(2026, 3, 21)]);
        assert_eq!(ps[1].start, date(2026, 3, 22));
        assert_eq!(ps[1].data_days, vec![date(2026, 3, 22)]);
        // every period is 30 dates, across both changes
        for p in &ps {
            assert_eq!(days_between(p.start, p.end), 29, "period {}", p.number);
        }
        let autumn = ps
            .iter()
            .find(|p| p.start <= date(2026, 10, 31) && date(2026, 10, 31) <= p.end)
            .expect("period of October 31");
        assert_eq!(autumn.data_days, vec![date(2026, 10, 31)]);
        // in UTC the same instants fall on the next dates
        let utc = periods(
            start,
            &TimeZone::UTC,
            start,
            date(2026, 12, 31),
            LATER,
            &inputs,
        );
        assert_eq!(utc[0].data_days, vec![date(2026, 3, 8)]);
        assert_eq!(utc[1].data_days, vec![date(2026, 3, 22)]);
    }

    #[test]
    fn rtm_same_instant_other_dates_in_tokyo_and_utc() {
        let tokyo = TimeZone::get("Asia/Tokyo").expect("tz");
        let start = date(2026, 2, 10);
        // period 1: February 10 - March 11; 20:00 UTC on March 11 is 05:00 on March 12 in Tokyo
        let instant = at("2026-03-11T20:00:00Z");
        let inputs = Inputs {
            data: vec![instant],
            entries: vec![entry(instant, 15)],
            contacts: vec![Contact {
                at: instant,
                kind: ContactKind::Synchronous,
            }],
        };
        let to = date(2026, 4, 1);
        let utc = periods(start, &TimeZone::UTC, start, to, LATER, &inputs);
        let jp = periods(start, &tokyo, start, to, LATER, &inputs);
        assert_eq!(utc[0].end, date(2026, 3, 11));
        assert_eq!(utc[0].data_days, vec![date(2026, 3, 11)]);
        assert_eq!((utc[0].minutes, utc[0].interactive), (15, true));
        assert!(utc[1].data_days.is_empty());
        assert!(jp[0].data_days.is_empty());
        assert_eq!((jp[0].minutes, jp[0].interactive), (0, false));
        assert_eq!(jp[1].data_days, vec![date(2026, 3, 12)]);
        assert_eq!((jp[1].minutes, jp[1].interactive), (15, true));
        assert_eq!(code_list(&jp[1]), vec![("98979", 1)]);
    }

    #[test]
    fn rtm_range_and_completeness() {
        let none = Inputs::default();
        // a range before the episode
        assert!(
            periods(
                START,
                &TimeZone::UTC,
                date(2025, 1, 1),
                date(2025, 12, 31),
                LATER,
                &none
            )
            .is_empty()
        );
        // an empty range
        assert!(
            periods(
                START,
                &TimeZone::UTC,
                date(2026, 3, 1),
                date(2026, 2, 1),
                LATER,
                &none
            )
            .is_empty()
        );
        // from the middle of period 2 to the first day of period 4
        let ps = periods(
            START,
            &TimeZone::UTC,
            day(START, 45),
            day(START, 91),
            day(START, 61),
            &none,
        );
        assert_eq!(
            ps.iter().map(|p| p.number).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        // today is day 61, the first of period 3: period 2 is over, period 3 is not
        assert_eq!(
            ps.iter().map(|p| p.complete).collect::<Vec<_>>(),
            vec![true, false, false]
        );
        // a range that starts before the episode begins with period 1
        let ps = periods(
            START,
            &TimeZone::UTC,
            date(2025, 12, 1),
            START,
            LATER,
            &none,
        );
        assert_eq!((ps.len(), ps[0].number), (1, 1));
    }
}
