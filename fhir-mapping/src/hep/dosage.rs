//! The exercise dosage extension: one complex extension that carries sets, repetitions,
//! hold, rest, load, tempo, side and target effort. No HL7 guide defines these; systems
//! that ignore the extension still see the dose in `patientInstruction` and the narrative.

use domain::dose::{
    Dose, DoseError, DoseParts, Effort, HoldSeconds, Load, RepCount, Repetitions, RestSeconds,
    SetCount, Side, Tempo, WeightUnit,
};
use serde_json::{Map, Value, json};

use super::{UCUM, canonical};
use crate::outcome::{Issue, IssueType};

/// Canonical URL of the extension.
pub fn extension_url() -> String {
    canonical("StructureDefinition", "exercise-dosage")
}

/// Canonical URL of the code system of sides.
pub fn side_system() -> String {
    canonical("CodeSystem", "exercise-side")
}

fn seconds(n: u16) -> Value {
    json!({"value": n, "unit": "s", "system": UCUM, "code": "s"})
}

fn sub(url: &str, key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert("url".into(), url.into());
    m.insert(key.into(), value);
    Value::Object(m)
}

/// The dose as the extension (a JSON `Extension`).
pub fn to_extension(dose: &Dose) -> Value {
    let p = dose.parts();
    let mut subs = Vec::new();
    if let Some(s) = p.sets {
        subs.push(sub("sets", "valuePositiveInt", s.get().into()));
    }
    match p.repetitions {
        Some(Repetitions::Exactly(n)) => {
            subs.push(sub("repetitions", "valuePositiveInt", n.get().into()))
        }
        Some(Repetitions::Range { min, max }) => subs.push(sub(
            "repetitions",
            "valueRange",
            json!({"low": {"value": min.get()}, "high": {"value": max.get()}}),
        )),
        None => {}
    }
    if let Some(h) = p.hold {
        subs.push(sub("hold", "valueDuration", seconds(h.get())));
    }
    if let Some(r) = p.rest {
        subs.push(sub("rest", "valueDuration", seconds(r.get())));
    }
    match &p.load {
        Some(Load::Weight { tenths, unit }) => {
            let value: Value = if tenths % 10 == 0 {
                (tenths / 10).into()
            } else {
                // an exact decimal with one digit after the point
                serde_json::from_str(&format!("{}.{}", tenths / 10, tenths % 10))
                    .unwrap_or(Value::Null)
            };
            let (word, code) = match unit {
                WeightUnit::Kilogram => ("kg", unit.ucum()),
                WeightUnit::Pound => ("lb", unit.ucum()),
            };
            subs.push(sub(
                "load",
                "valueQuantity",
                json!({"value": value, "unit": word, "system": UCUM, "code": code}),
            ));
        }
        Some(Load::Resistance(name)) => {
            subs.push(sub("resistance", "valueString", name.clone().into()))
        }
        None => {}
    }
    if let Some(t) = p.tempo {
        subs.push(sub("tempo", "valueString", t.to_string().into()));
    }
    if let Some(s) = p.side {
        subs.push(sub(
            "side",
            "valueCoding",
            json!({"system": side_system(), "code": s.code()}),
        ));
    }
    if let Some(e) = p.effort {
        subs.push(sub("targetEffort", "valueInteger", e.get().into()));
    }
    json!({"url": extension_url(), "extension": subs})
}

/// Finds the dosage extension among a resource's extensions and reads it; `root` is the
/// resource type, for the locations of problems.
pub fn read_from(json: &Map<String, Value>, root: &str) -> Result<Dose, Vec<Issue>> {
    let url = extension_url();
    let found = json
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|exts| {
            exts.iter()
                .enumerate()
                .find(|(_, e)| e.get("url").and_then(Value::as_str) == Some(url.as_str()))
        });
    match found {
        Some((i, ext)) => from_extension(ext, &format!("{root}.extension[{i}]")),
        None => Err(vec![
            Issue::error(IssueType::Required, format!("the dose is required ({url})"))
                .at(format!("{root}.extension")),
        ]),
    }
}

/// Reads the extension back. Every problem is reported, each with its location under
/// `path` (the FHIRPath of the extension).
pub fn from_extension(ext: &Value, path: &str) -> Result<Dose, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut parts = DoseParts::default();
    let problem = |issues: &mut Vec<Issue>, at: String, msg: String| {
        issues.push(Issue::error(IssueType::Value, msg).at(at));
    };
    let subs = ext
        .get("extension")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, s) in subs.iter().enumerate() {
        let at = format!("{path}.extension[{i}]");
        let url = s.get("url").and_then(Value::as_str).unwrap_or_default();
        let int = |key: &str| s.get(key).and_then(Value::as_u64);
        let check = |r: Result<(), DoseError>, issues: &mut Vec<Issue>| {
            if let Err(e) = r {
                problem(issues, at.clone(), e.to_string());
            }
        };
        match url {
            "sets" => check(
                to_u16(int("valuePositiveInt"))
                    .and_then(|n| {
                        u8::try_from(n).map_err(|_| DoseError::Sets { max: SetCount::MAX })
                    })
                    .and_then(SetCount::new)
                    .map(|v| parts.sets = Some(v)),
                &mut issues,
            ),
            "repetitions" => {
                let r = if let Some(range) = s.get("valueRange") {
                    let low = range.pointer("/low/value").and_then(Value::as_u64);
                    let high = range.pointer("/high/value").and_then(Value::as_u64);
                    to_u16(low).and_then(|l| to_u16(high).and_then(|h| Repetitions::range(l, h)))
                } else {
                    to_u16(int("valuePositiveInt")).and_then(Repetitions::exactly)
                };
                check(r.map(|v| parts.repetitions = Some(v)), &mut issues);
            }
            "hold" => check(
                duration_seconds(s)
                    .ok_or(DoseError::Hold {
                        max: HoldSeconds::MAX,
                    })
                    .and_then(HoldSeconds::new)
                    .map(|v| parts.hold = Some(v)),
                &mut issues,
            ),
            "rest" => check(
                duration_seconds(s)
                    .ok_or(DoseError::Rest {
                        max: RestSeconds::MAX,
                    })
                    .and_then(RestSeconds::new)
                    .map(|v| parts.rest = Some(v)),
                &mut issues,
            ),
            "load" => check(load(s).map(|v| parts.load = Some(v)), &mut issues),
            "resistance" => check(
                s.get("valueString")
                    .and_then(Value::as_str)
                    .ok_or(DoseError::Resistance)
                    .and_then(Load::resistance)
                    .map(|v| parts.load = Some(v)),
                &mut issues,
            ),
            "tempo" => check(
                s.get("valueString")
                    .and_then(Value::as_str)
                    .ok_or(DoseError::Tempo)
                    .and_then(Tempo::parse)
                    .map(|v| parts.tempo = Some(v)),
                &mut issues,
            ),
            "side" => {
                let coding = s.get("valueCoding");
                let system_ok = coding
                    .and_then(|c| c.get("system"))
                    .and_then(Value::as_str)
                    .is_some_and(|sys| sys == side_system());
                match coding
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str)
                    .and_then(Side::from_code)
                {
                    Some(side) if system_ok => parts.side = Some(side),
                    _ => problem(
                        &mut issues,
                        at.clone(),
                        format!(
                            "side is a Coding of {} (left, right, both, alternating)",
                            side_system()
                        ),
                    ),
                }
            }
            "targetEffort" => check(
                int("valueInteger")
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(DoseError::Effort)
                    .and_then(Effort::new)
                    .map(|v| parts.effort = Some(v)),
                &mut issues,
            ),
            other => problem(
                &mut issues,
                at.clone(),
                format!("unknown part `{other}` of the dosage extension"),
            ),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Dose::new(parts)
        .map_err(|e| vec![Issue::error(IssueType::Required, e.to_string()).at(path.to_string())])
}

fn to_u16(v: Option<u64>) -> Result<u16, DoseError> {
    v.and_then(|n| u16::try_from(n).ok())
        .ok_or(DoseError::Repetitions { max: RepCount::MAX })
}

/// A `valueDuration` in whole seconds (UCUM `s` or `min`).
fn duration_seconds(s: &Value) -> Option<u16> {
    let d = s.get("valueDuration")?;
    let value = d.get("value").and_then(Value::as_f64)?;
    let factor = match d.get("code").and_then(Value::as_str) {
        Some("s") => 1.0,
        Some("min") => 60.0,
        _ => return None,
    };
    let secs = value * factor;
    (secs >= 0.0 && secs.fract() == 0.0 && secs <= f64::from(u16::MAX)).then_some(secs as u16)
}

fn load(s: &Value) -> Result<Load, DoseError> {
    let q = s.get("valueQuantity").ok_or(DoseError::Load { max: 500 })?;
    let unit = match q.get("code").and_then(Value::as_str) {
        Some("kg") => WeightUnit::Kilogram,
        Some("[lb_av]") => WeightUnit::Pound,
        _ => return Err(DoseError::Load { max: 500 }),
    };
    // Tenths exactly, from the decimal's text (no binary rounding).
    let text = q.get("value").map(Value::to_string).unwrap_or_default();
    let (whole, frac) = text.split_once('.').unwrap_or((&text, "0"));
    let frac = frac.trim_end_matches('0');
    if frac.len() > 1 {
        return Err(DoseError::Load { max: 500 });
    }
    let tenths = whole
        .parse::<u32>()
        .ok()
        .and_then(|w| w.checked_mul(10))
        .and_then(|w| w.checked_add(frac.parse::<u32>().unwrap_or(0)))
        .ok_or(DoseError::Load { max: 500 })?;
    Load::weight_tenths(tenths, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dose(parts: DoseParts) -> Dose {
        Dose::new(parts).unwrap_or_else(|e| panic!("{e}"))
    }

    fn round_trip(d: &Dose) {
        let ext = to_extension(d);
        // through JSON text, as stored and sent
        let text = serde_json::to_string(&ext).unwrap_or_default();
        let back: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(
            from_extension(&back, "X.extension[0]").as_ref(),
            Ok(d),
            "{text}"
        );
    }

    #[test]
    fn doses_round_trip() {
        round_trip(&dose(DoseParts {
            sets: SetCount::new(3).ok(),
            repetitions: Repetitions::exactly(10).ok(),
            hold: HoldSeconds::new(5).ok(),
            side: Some(Side::Left),
            ..Default::default()
        }));
        round_trip(&dose(DoseParts {
            repetitions: Repetitions::range(8, 12).ok(),
            rest: RestSeconds::new(90).ok(),
            load: Load::weight_tenths(25, WeightUnit::Kilogram).ok(),
            tempo: Tempo::parse("3-1-3").ok(),
            effort: Effort::new(7).ok(),
            side: Some(Side::Alternating),
            ..Default::default()
        }));
        round_trip(&dose(DoseParts {
            hold: HoldSeconds::new(30).ok(),
            load: Load::resistance("red band").ok(),
            ..Default::default()
        }));
        round_trip(&dose(DoseParts {
            repetitions: Repetitions::exactly(15).ok(),
            load: Load::weight_tenths(100, WeightUnit::Pound).ok(),
            ..Default::default()
        }));
    }

    #[test]
    fn extension_shape() {
        let ext = to_extension(&dose(DoseParts {
            sets: SetCount::new(2).ok(),
            hold: HoldSeconds::new(20).ok(),
            load: Load::weight_tenths(15, WeightUnit::Kilogram).ok(),
            ..Default::default()
        }));
        assert_eq!(
            ext["url"],
            "https://hep-fhir.org/fhir/StructureDefinition/exercise-dosage"
        );
        assert_eq!(
            ext["extension"][0],
            json!({"url": "sets", "valuePositiveInt": 2})
        );
        assert_eq!(ext["extension"][1]["valueDuration"]["code"], "s");
        assert_eq!(
            ext["extension"][2]["valueQuantity"]["value"].to_string(),
            "1.5"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let ext = json!({"url": extension_url(), "extension": [
            {"url": "sets", "valuePositiveInt": 0},
            {"url": "repetitions", "valueRange": {"low": {"value": 12}, "high": {"value": 8}}},
            {"url": "side", "valueCoding": {"system": side_system(), "code": "up"}},
            {"url": "load", "valueQuantity": {"value": 2.25, "code": "kg", "system": UCUM}},
            {"url": "colour", "valueString": "x"}
        ]});
        let issues = from_extension(&ext, "ServiceRequest.extension[0]")
            .err()
            .unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "ServiceRequest.extension[0].extension[0]",
                "ServiceRequest.extension[0].extension[1]",
                "ServiceRequest.extension[0].extension[2]",
                "ServiceRequest.extension[0].extension[3]",
                "ServiceRequest.extension[0].extension[4]"
            ]
        );
        let empty =
            json!({"url": extension_url(), "extension": [{"url": "sets", "valuePositiveInt": 3}]});
        let issues = from_extension(&empty, "E").err().unwrap_or_default();
        assert_eq!(issues[0].code, IssueType::Required);
    }
}
