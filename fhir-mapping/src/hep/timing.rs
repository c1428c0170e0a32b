//! A schedule as FHIR `Timing` (`ServiceRequest.occurrenceTiming`) and back.

use domain::schedule::{Days, Duration, Schedule, ScheduleParts};
use jiff::civil::{Date, Time, Weekday};
use serde_json::{Map, Value, json};

use crate::outcome::{Issue, IssueType};

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "mon"),
    (Weekday::Tuesday, "tue"),
    (Weekday::Wednesday, "wed"),
    (Weekday::Thursday, "thu"),
    (Weekday::Friday, "fri"),
    (Weekday::Saturday, "sat"),
    (Weekday::Sunday, "sun"),
];

/// The schedule as a `Timing` (with `code.text` saying it in words).
pub fn to_timing(s: &Schedule) -> Value {
    let mut repeat = Map::new();
    let mut bounds = Map::new();
    bounds.insert("start".into(), s.start().to_string().into());
    if let Some(last) = s.last_day() {
        bounds.insert("end".into(), last.to_string().into());
    }
    repeat.insert("boundsPeriod".into(), Value::Object(bounds));
    if let Some(c) = s.count() {
        repeat.insert("count".into(), c.into());
    }
    repeat.insert("frequency".into(), s.per_day().into());
    repeat.insert("period".into(), 1.into());
    repeat.insert("periodUnit".into(), "d".into());
    if let Days::On(days) = s.days() {
        let codes: Vec<Value> = days
            .iter()
            .filter_map(|d| {
                WEEKDAYS
                    .iter()
                    .find(|(w, _)| w == d)
                    .map(|(_, c)| Value::from(*c))
            })
            .collect();
        repeat.insert("dayOfWeek".into(), Value::Array(codes));
    }
    if !s.times().is_empty() {
        let times: Vec<Value> = s
            .times()
            .iter()
            .map(|t| {
                Value::from(format!(
                    "{:02}:{:02}:{:02}",
                    t.hour(),
                    t.minute(),
                    t.second()
                ))
            })
            .collect();
        repeat.insert("timeOfDay".into(), Value::Array(times));
    }
    json!({"repeat": repeat, "code": {"text": s.to_string()}})
}

/// Reads a `Timing` written by [`to_timing`] or by a client in the same subset. Every
/// problem is reported with its location under `path`.
pub fn from_timing(timing: &Value, path: &str) -> Result<Schedule, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut bad = |at: &str, msg: &str| {
        issues.push(Issue::error(IssueType::Value, msg).at(format!("{path}.repeat.{at}")))
    };
    let Some(repeat) = timing.get("repeat") else {
        return Err(vec![
            Issue::error(IssueType::Required, "a schedule needs Timing.repeat")
                .at(format!("{path}.repeat")),
        ]);
    };
    for unsupported in [
        "boundsDuration",
        "boundsRange",
        "duration",
        "durationMax",
        "frequencyMax",
        "periodMax",
        "when",
        "offset",
        "countMax",
    ] {
        if repeat.get(unsupported).is_some() {
            bad(
                unsupported,
                "not supported in an exercise schedule; use boundsPeriod, frequency per day, dayOfWeek and timeOfDay",
            );
        }
    }
    let per_day = repeat.get("frequency").and_then(Value::as_u64).unwrap_or(1);
    let period = repeat.get("period").and_then(Value::as_f64).unwrap_or(1.0);
    let unit = repeat
        .get("periodUnit")
        .and_then(Value::as_str)
        .unwrap_or("d");
    if period != 1.0 || unit != "d" {
        bad(
            "period",
            "an exercise schedule counts times per day (period 1, periodUnit d)",
        );
    }
    let date_at = |key: &str| -> Option<Result<Date, ()>> {
        repeat
            .pointer(&format!("/boundsPeriod/{key}"))
            .and_then(Value::as_str)
            .map(|s| s.get(..10).unwrap_or(s).parse::<Date>().map_err(|_| ()))
    };
    let start = match date_at("start") {
        Some(Ok(d)) => Some(d),
        Some(Err(())) => {
            bad("boundsPeriod.start", "not a date");
            None
        }
        None => {
            bad("boundsPeriod.start", "a schedule needs its start date");
            None
        }
    };
    let duration = match date_at("end") {
        Some(Ok(d)) => Duration::Until(d),
        Some(Err(())) => {
            bad("boundsPeriod.end", "not a date");
            Duration::Open
        }
        None => Duration::Open,
    };
    let days = match repeat.get("dayOfWeek").and_then(Value::as_array) {
        None => Days::Every,
        Some(codes) => {
            let mut days = Vec::new();
            for (i, c) in codes.iter().enumerate() {
                match WEEKDAYS.iter().find(|(_, code)| Some(*code) == c.as_str()) {
                    Some((d, _)) => days.push(*d),
                    None => bad(&format!("dayOfWeek[{i}]"), "not a day code (mon ... sun)"),
                }
            }
            Days::on(&days).unwrap_or(Days::Every)
        }
    };
    let mut times = Vec::new();
    if let Some(list) = repeat.get("timeOfDay").and_then(Value::as_array) {
        for (i, t) in list.iter().enumerate() {
            match t.as_str().and_then(|s| s.parse::<Time>().ok()) {
                Some(t) => times.push(t),
                None => bad(&format!("timeOfDay[{i}]"), "not a time (hh:mm:ss)"),
            }
        }
    }
    let count = match repeat.get("count") {
        None => None,
        Some(c) => match c.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                bad("count", "not a positive whole number");
                None
            }
        },
    };
    let (Some(start), true) = (start, issues.is_empty()) else {
        return Err(issues);
    };
    let per_day = u8::try_from(per_day).unwrap_or(u8::MAX);
    Schedule::new(ScheduleParts {
        per_day,
        days,
        times,
        start,
        duration,
        count,
    })
    .map_err(|e| vec![Issue::error(IssueType::Value, e.to_string()).at(format!("{path}.repeat"))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn schedule(p: ScheduleParts) -> Schedule {
        Schedule::new(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn schedules_round_trip() {
        let cases = [
            ScheduleParts {
                per_day: 2,
                days: Days::Every,
                times: vec![],
                start: date(2026, 11, 2),
                duration: Duration::Weeks(6),
                count: None,
            },
            ScheduleParts {
                per_day: 3,
                days: Days::per_week(3).unwrap_or(Days::Every),
                times: vec![
                    Time::constant(8, 0, 0, 0),
                    Time::constant(13, 30, 0, 0),
                    Time::constant(19, 0, 0, 0),
                ],
                start: date(2026, 11, 2),
                duration: Duration::Open,
                count: Some(40),
            },
            ScheduleParts {
                per_day: 1,
                days: Days::Every,
                times: vec![],
                start: date(2027, 2, 27),
                duration: Duration::Until(date(2027, 3, 30)),
                count: None,
            },
        ];
        for p in cases {
            let s = schedule(p);
            let t = to_timing(&s);
            let text = serde_json::to_string(&t).unwrap_or_default();
            let back: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert_eq!(
                from_timing(&back, "ServiceRequest.occurrenceTiming").as_ref(),
                Ok(&s),
                "{text}"
            );
        }
    }

    #[test]
    fn timing_shape() {
        let s = schedule(ScheduleParts {
            per_day: 2,
            days: Days::on(&[Weekday::Friday, Weekday::Monday]).unwrap_or(Days::Every),
            times: vec![],
            start: date(2026, 11, 2),
            duration: Duration::Weeks(4),
            count: None,
        });
        let t = to_timing(&s);
        assert_eq!(
            t["repeat"]["boundsPeriod"],
            json!({"start": "2026-11-02", "end": "2026-11-29"})
        );
        assert_eq!(t["repeat"]["dayOfWeek"], json!(["mon", "fri"]));
        assert_eq!(t["repeat"]["frequency"], 2);
        assert_eq!(
            t["code"]["text"],
            "twice a day, on Monday and Friday for 4 weeks"
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let t = json!({"repeat": {"boundsPeriod": {"start": "soon"}, "frequency": 2, "period": 2, "periodUnit": "wk",
            "dayOfWeek": ["mon", "someday"], "timeOfDay": ["8am"], "when": ["MORN"]}});
        let issues = from_timing(&t, "T").err().unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "T.repeat.when",
                "T.repeat.period",
                "T.repeat.boundsPeriod.start",
                "T.repeat.dayOfWeek[1]",
                "T.repeat.timeOfDay[0]"
            ]
        );
        assert!(from_timing(&json!({}), "T").is_err());
    }
}
