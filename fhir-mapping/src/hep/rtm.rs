//! The answer of `$rtm`: the remote therapeutic monitoring periods of
//! [`domain::rtm`] for many (patient, program) pairs, as a FHIR `Parameters` resource
//! or as CSV for a biller's spreadsheet.
//!
//! Each CPT code of a period is a `code` part holding a `coding` part (valueCoding) and,
//! when the code has more than one unit, a `units` part (valuePositiveInt): an R4
//! parameter holds a value or parts, never both, so the units cannot sit next to the
//! Coding in the same part.

use domain::rtm::{Code, PeriodFigures, RULES_YEAR};
use jiff::civil::Date;
use serde_json::{Value, json};

/// The CPT code system.
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";

/// The periods of one patient's program.
#[derive(Debug, Clone, Copy)]
pub struct PatientPeriods<'a> {
    /// `Patient/x`
    pub patient: &'a str,
    /// `CarePlan/x`
    pub program: &'a str,
    /// The first day of the monitoring episode.
    pub episode_start: Date,
    /// The periods that overlap the dates asked for.
    pub periods: &'a [PeriodFigures],
}

fn code_part(c: &Code) -> Value {
    let mut parts = vec![json!({
        "name": "coding",
        "valueCoding": {"system": CPT, "code": c.code, "display": c.display},
    })];
    if c.units > 1 {
        parts.push(json!({"name": "units", "valuePositiveInt": c.units}));
    }
    json!({"name": "code", "part": parts})
}

fn period_part(p: &PeriodFigures) -> Value {
    let mut parts = vec![
        json!({"name": "number", "valuePositiveInt": p.number}),
        json!({"name": "start", "valueDate": p.start.to_string()}),
        json!({"name": "end", "valueDate": p.end.to_string()}),
        json!({"name": "complete", "valueBoolean": p.complete}),
        json!({"name": "daysWithData", "valueUnsignedInt": p.days_with_data}),
        json!({"name": "minutes", "valueUnsignedInt": p.minutes}),
        json!({"name": "interactiveCommunication", "valueBoolean": p.interactive}),
        json!({"name": "realTimeContact", "valueBoolean": p.real_time}),
    ];
    parts.extend(p.codes.iter().map(code_part));
    // each logged time, so that a biller can see who spent it, when and on what
    for e in &p.entries {
        let mut entry = vec![
            json!({"name": "when", "valueInstant": e.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}),
            json!({"name": "minutes", "valueUnsignedInt": e.minutes}),
        ];
        if !e.who.is_empty() {
            entry.push(json!({"name": "who", "valueReference": {"reference": e.who}}));
        }
        if !e.what.is_empty() {
            entry.push(json!({"name": "what", "valueString": e.what}));
        }
        parts.push(json!({"name": "entry", "part": entry}));
    }
    json!({"name": "period", "part": parts})
}

/// `$rtm` answer: Parameters, one `patient` parameter per (patient, program) with parts `patient`
/// (valueReference), `program` (valueReference), `episodeStart` (valueDate) and one `period` part per
/// period: `number` (valuePositiveInt), `start`/`end` (valueDate), `complete` (valueBoolean),
/// `daysWithData` (valueUnsignedInt), `minutes` (valueUnsignedInt), `interactiveCommunication`,
/// `realTimeContact`
/// (valueBoolean), one `code` part per supported code (its `coding`: valueCoding of system
/// [`CPT`], code, display; its `units` as valuePositiveInt when > 1), and one `entry`
/// part per logged treatment-management time (`when`, `minutes`, `who`, `what`).
/// Plus `rulesYear` (valueInteger) and `from`/`to` (valueDate) at the top.
pub fn to_parameters(from: Date, to: Date, rows: &[PatientPeriods<'_>]) -> Value {
    let mut params = vec![
        json!({"name": "rulesYear", "valueInteger": RULES_YEAR}),
        json!({"name": "from", "valueDate": from.to_string()}),
        json!({"name": "to", "valueDate": to.to_string()}),
    ];
    for row in rows {
        let mut parts = vec![
            json!({"name": "patient", "valueReference": {"reference": row.patient}}),
            json!({"name": "program", "valueReference": {"reference": row.program}}),
            json!({"name": "episodeStart", "valueDate": row.episode_start.to_string()}),
        ];
        parts.extend(row.periods.iter().map(period_part));
        params.push(json!({"name": "patient", "part": parts}));
    }
    json!({"resourceType": "Parameters", "parameter": params})
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn code_label(c: &Code) -> String {
    if c.units > 1 {
        format!("{}x{}", c.code, c.units)
    } else {
        c.code.to_string()
    }
}

/// CSV: header + one line per patient period: patient,program,period,start,end,complete,days_with_data,minutes,interactive,real_time,codes
/// (codes joined by space, `98981x2` for units).
pub fn to_csv(rows: &[PatientPeriods<'_>]) -> String {
    let mut out = String::from(
        "patient,program,period,start,end,complete,days_with_data,minutes,interactive,real_time,codes\n",
    );
    for row in rows {
        let patient = csv_field(row.patient);
        let program = csv_field(row.program);
        for p in row.periods {
            let codes: Vec<String> = p.codes.iter().map(code_label).collect();
            let fields = [
                patient.clone(),
                program.clone(),
                p.number.to_string(),
                p.start.to_string(),
                p.end.to_string(),
                p.complete.to_string(),
                p.days_with_data.to_string(),
                p.minutes.to_string(),
                p.interactive.to_string(),
                p.real_time.to_string(),
                codes.join(" "),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseLimits, parse_resource};
    use domain::rtm::{Contact, ContactKind, Entry, Inputs, periods};
    use jiff::Timestamp;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn sample() -> Vec<PeriodFigures> {
        let start = date(2026, 1, 1);
        // 20 days of data in period 1, 3 in period 2; 65 minutes and a call in period 1
        let mut data: Vec<Timestamp> = (1..=20)
            .map(|d| at(&format!("2026-01-{d:02}T15:00:00Z")))
            .collect();
        data.extend(
            [
                "2026-02-01T15:00:00Z",
                "2026-02-02T15:00:00Z",
                "2026-02-03T15:00:00Z",
            ]
            .map(at),
        );
        let inputs = Inputs {
            data,
            entries: vec![Entry {
                at: at("2026-01-12T16:00:00Z"),
                minutes: 65,
                who: "Practitioner/pt1".into(),
                what: "reviewed the reports, changed the dose".into(),
            }],
            contacts: vec![Contact {
                at: at("2026-01-12T16:30:00Z"),
                kind: ContactKind::Synchronous,
            }],
        };
        periods(
            start,
            &TimeZone::UTC,
            start,
            date(2026, 2, 10),
            date(2026, 2, 10),
            &inputs,
        )
    }

    fn part<'v>(parts: &'v Value, name: &str) -> &'v Value {
        parts["part"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn rtm_parameters_are_valid_r4_and_carry_the_figures() {
        let figures = sample();
        let rows = [PatientPeriods {
            patient: "Patient/p1",
            program: "CarePlan/c1",
            episode_start: date(2026, 1, 1),
            periods: &figures,
        }];
        let p = to_parameters(date(2026, 1, 1), date(2026, 2, 10), &rows);
        let bytes = serde_json::to_vec(&p).expect("json");
        let parsed = parse_resource(&bytes, Format::Json, &ParseLimits::default());
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        assert_eq!(p["parameter"][0]["valueInteger"], 2026);
        assert_eq!(p["parameter"][1]["valueDate"], "2026-01-01");
        assert_eq!(p["parameter"][2]["valueDate"], "2026-02-10");
        let patient = &p["parameter"][3];
        assert_eq!(patient["name"], "patient");
        assert_eq!(
            part(patient, "patient")["valueReference"]["reference"],
            "Patient/p1"
        );
        assert_eq!(
            part(patient, "program")["valueReference"]["reference"],
            "CarePlan/c1"
        );
        assert_eq!(part(patient, "episodeStart")["valueDate"], "2026-01-01");
        let periods: Vec<&Value> = patient["part"]
            .as_array()
            .expect("parts")
            .iter()
            .filter(|x| x["name"] == "period")
            .collect();
        assert_eq!(periods.len(), 2);
        let first = periods[0];
        assert_eq!(part(first, "number")["valuePositiveInt"], 1);
        assert_eq!(part(first, "start")["valueDate"], "2026-01-01");
        assert_eq!(part(first, "end")["valueDate"], "2026-01-30");
        assert_eq!(part(first, "complete")["valueBoolean"], true);
        assert_eq!(part(first, "daysWithData")["valueUnsignedInt"], 20);
        assert_eq!(part(first, "minutes")["valueUnsignedInt"], 65);
        assert_eq!(
            part(first, "interactiveCommunication")["valueBoolean"],
            true
        );
        let codes: Vec<(String, Option<u64>)> = first["part"]
            .as_array()
            .expect("parts")
            .iter()
            .filter(|x| x["name"] == "code")
            .map(|c| {
                let coding = &part(c, "coding")["valueCoding"];
                assert_eq!(coding["system"], CPT);
                assert!(coding["display"].as_str().is_some_and(|d| !d.is_empty()));
                (
                    coding["code"].as_str().unwrap_or_default().to_string(),
                    part(c, "units")["valuePositiveInt"].as_u64(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("98975".to_string(), None),
                ("98977".to_string(), None),
                ("98980".to_string(), None),
                ("98981".to_string(), Some(2)),
            ]
        );
        let second = periods[1];
        assert_eq!(part(second, "complete")["valueBoolean"], false);
        assert_eq!(part(second, "daysWithData")["valueUnsignedInt"], 3);
        assert_eq!(part(second, "minutes")["valueUnsignedInt"], 0);
        assert_eq!(
            part(second, "interactiveCommunication")["valueBoolean"],
            false
        );
    }

    #[test]
    fn rtm_parameters_without_rows_are_valid() {
        let p = to_parameters(date(2026, 1, 1), date(2026, 1, 31), &[]);
        let bytes = serde_json::to_vec(&p).expect("json");
        assert!(parse_resource(&bytes, Format::Json, &ParseLimits::default()).is_ok());
        assert_eq!(p["parameter"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn rtm_csv_one_line_per_period() {
        let figures = sample();
        let rows = [
            PatientPeriods {
                patient: "Patient/p1",
                program: "CarePlan/c1",
                episode_start: date(2026, 1, 1),
                periods: &figures,
            },
            PatientPeriods {
                patient: "Patient/p,2",
                program: "CarePlan/c2",
                episode_start: date(2026, 1, 1),
                periods: &[],
            },
        ];
        let csv = to_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            vec![
                "patient,program,period,start,end,complete,days_with_data,minutes,interactive,real_time,codes",
                "Patient/p1,CarePlan/c1,1,2026-01-01,2026-01-30,true,20,65,true,true,98975 98977 98980 98981x2",
                "Patient/p1,CarePlan/c1,2,2026-01-31,2026-03-01,false,3,0,false,false,98985",
            ]
        );
        let quoted = to_csv(&[PatientPeriods {
            periods: &figures[..1],
            ..rows[1]
        }]);
        assert!(
            quoted
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("\"Patient/p,2\",CarePlan/c2,1,"))
        );
    }
}
