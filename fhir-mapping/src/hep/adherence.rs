//! The answer of `$adherence`: the figures of [`domain::adherence`] as a FHIR
//! `Parameters` resource (percentages as UCUM `%` quantities, counts as integers,
//! nested `part`s per exercise and per week), or as CSV for spreadsheets.

use domain::adherence::{Adherence, Figures, Ratio, Trend};
use serde_json::{Value, json};

use super::{UCUM, canonical};

/// The code system of the adherence measures.
pub fn measure_system() -> String {
    canonical("CodeSystem", "adherence-measure")
}

/// Codes of the adherence-measure code system.
pub const MEASURES: &[(&str, &str)] = &[
    (
        "weekly-exercise-adherence",
        "Exercise adherence of one program week: completed / due sessions (%)",
    ),
    (
        "session-adherence",
        "Days with every due session completed / days with sessions due (%)",
    ),
    (
        "dose-adherence",
        "Sets x repetitions done / prescribed, capped at 100 % (%)",
    ),
    (
        "program-exercise-adherence",
        "Exercise adherence of a whole program: completed / due sessions (%)",
    ),
    ("sessions-due", "Sessions due"),
    ("sessions-completed", "Sessions completed"),
];

/// What a weekly summary Observation states.
pub struct WeekSummary<'a> {
    pub id: &'a str,
    /// `CarePlan/...`, `Patient/...`
    pub plan: &'a str,
    pub patient: &'a str,
    pub week: u32,
    /// FHIR dateTimes of the week's bounds (end exclusive).
    pub start: &'a str,
    pub end: &'a str,
    /// `preliminary` while the week runs, `final` after, `amended` when a final one changes.
    pub status: &'a str,
    pub figures: &'a Figures,
}

fn measure(code: &str) -> Value {
    let display = MEASURES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, d)| d);
    json!({"coding": [{"system": measure_system(), "code": code, "display": display}]})
}

fn percent_quantity(r: Ratio) -> Option<Value> {
    r.percent()
        .map(|p| json!({"value": p, "unit": "%", "system": UCUM, "code": "%"}))
}

/// The weekly adherence summary Observation of a program (no meta yet).
pub fn week_observation(w: &WeekSummary<'_>) -> Value {
    let name = format!("{}-week-{}", w.plan.trim_start_matches("CarePlan/"), w.week);
    summary_observation(w, "weekly-exercise-adherence", &name)
}

/// The adherence summary Observation of a whole program, made when it is completed (its
/// referral Task returns it); `w.start` and `w.end` are the program's first and last
/// due instants, `w.week` is not used.
pub fn program_observation(w: &WeekSummary<'_>) -> Value {
    let name = format!("{}-program", w.plan.trim_start_matches("CarePlan/"));
    summary_observation(w, "program-exercise-adherence", &name)
}

fn summary_observation(w: &WeekSummary<'_>, code: &str, name: &str) -> Value {
    let f = w.figures;
    let mut obs = json!({
        "resourceType": "Observation",
        "id": w.id,
        "identifier": [{"system": canonical("NamingSystem", "adherence-summary"), "value": name}],
        "basedOn": [{"reference": w.plan}],
        "status": w.status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "activity", "display": "Activity"}]}],
        "code": measure(code),
        "subject": {"reference": w.patient},
        "effectivePeriod": {"start": w.start, "end": w.end},
    });
    match percent_quantity(f.exercise) {
        Some(q) => obs["valueQuantity"] = q,
        None => {
            obs["dataAbsentReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable"}],
                                             "text": "No session was due yet"})
        }
    }
    let mut components = vec![
        json!({"code": measure("sessions-due"), "valueInteger": f.due}),
        json!({"code": measure("sessions-completed"), "valueInteger": f.completed}),
    ];
    for (code, ratio) in [("session-adherence", f.session), ("dose-adherence", f.dose)] {
        if let Some(q) = percent_quantity(ratio) {
            components.push(json!({"code": measure(code), "valueQuantity": q}));
        }
    }
    obs["component"] = Value::Array(components);
    obs
}

/// What the figures are about, besides the figures.
pub struct Context<'a> {
    /// FHIR dateTimes of the period asked for.
    pub start: &'a str,
    pub end: &'a str,
    /// FHIR dateTime of the as-of instant.
    pub as_of: &'a str,
    /// Per prescription id (as in the figures): its reference and exercise name.
    pub exercises: &'a [(String, String)],
}

fn percent(name: &str, r: Ratio) -> Option<Value> {
    r.percent().map(|p| {
        json!({"name": name, "valueQuantity": {"value": p, "unit": "%", "system": UCUM, "code": "%"}})
    })
}

fn integer(name: &str, v: u32) -> Value {
    json!({"name": name, "valueInteger": v})
}

fn trend_parts(prefix: &str, t: Option<Trend>) -> Vec<Value> {
    match t {
        None => Vec::new(),
        Some(t) => vec![
            json!({"name": format!("{prefix}First"), "valueInteger": t.first}),
            json!({"name": format!("{prefix}Last"), "valueInteger": t.last}),
            json!({"name": format!("{prefix}Mean"), "valueDecimal": t.mean}),
            json!({"name": format!("{prefix}Reports"), "valueInteger": t.reports}),
        ],
    }
}

fn figure_parts(f: &Figures) -> Vec<Value> {
    let mut parts = vec![
        integer("due", f.due),
        integer("completed", f.completed),
        integer("missed", f.missed),
        integer("late", f.late),
    ];
    parts.extend(percent("exerciseAdherence", f.exercise));
    parts.extend(percent("sessionAdherence", f.session));
    parts.extend(percent("doseAdherence", f.dose));
    parts.extend(trend_parts("pain", f.pain));
    parts.extend(trend_parts("difficulty", f.difficulty));
    parts
}

fn exercise_label<'a>(ctx: &'a Context<'_>, id: &str) -> (String, &'a str) {
    ctx.exercises
        .iter()
        .find(|(rid, _)| rid == id)
        .map(|(rid, name)| (format!("ServiceRequest/{rid}"), name.as_str()))
        .unwrap_or_else(|| (format!("ServiceRequest/{id}"), "Exercise"))
}

/// The figures as a `Parameters` resource.
pub fn to_parameters(a: &Adherence, ctx: &Context<'_>) -> Value {
    let mut params = vec![
        json!({"name": "formulaVersion", "valueString": domain::adherence::FORMULA_VERSION}),
        json!({"name": "period", "valuePeriod": {"start": ctx.start, "end": ctx.end}}),
        json!({"name": "asOf", "valueDateTime": ctx.as_of}),
        integer("activeDays30", a.active_days_30),
        json!({"name": "overall", "part": figure_parts(&a.overall)}),
    ];
    for (id, f) in &a.exercises {
        let (reference, name) = exercise_label(ctx, id);
        let mut parts = vec![
            json!({"name": "prescription", "valueReference": {"reference": reference}}),
            json!({"name": "name", "valueString": name}),
        ];
        parts.extend(figure_parts(f));
        params.push(json!({"name": "exercise", "part": parts}));
    }
    for w in &a.weeks {
        let mut parts = vec![
            integer("number", w.number),
            json!({"name": "start", "valueDate": w.start.to_string()}),
        ];
        parts.extend(figure_parts(&w.figures));
        params.push(json!({"name": "week", "part": parts}));
    }
    json!({"resourceType": "Parameters", "parameter": params})
}

/// Adds to an `$adherence` answer one `outcome` parameter per outcome measure of an
/// `$outcomes` answer, with its summary only (questionnaire, title, baseline, latest,
/// change, mcidReached, worsened: no scores), so that an EHR pulling adherence sees
/// whether the patient improves too.
pub fn add_outcomes(adherence: &mut Value, outcomes: &Value) {
    const SUMMARY: &[&str] = &[
        "questionnaire",
        "title",
        "baseline",
        "latest",
        "change",
        "mcidReached",
        "worsened",
    ];
    let measures = outcomes["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "measure");
    let mut added = Vec::new();
    for m in measures {
        let parts: Vec<Value> = m["part"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["name"].as_str().is_some_and(|n| SUMMARY.contains(&n)))
            .cloned()
            .collect();
        added.push(json!({"name": "outcome", "part": parts}));
    }
    if let Some(params) = adherence["parameter"].as_array_mut() {
        params.extend(added);
    }
}

/// The figures of many patients as a `Parameters` resource: the sum, then one
/// `patient` parameter each (parts: the patient, `activeDays30`, the figures).
pub fn clinic_parameters(
    overall: &Figures,
    patients: &[(String, Figures, u32)],
    start: &str,
    end: &str,
    as_of: &str,
) -> Value {
    let mut params = vec![
        json!({"name": "formulaVersion", "valueString": domain::adherence::FORMULA_VERSION}),
        json!({"name": "period", "valuePeriod": {"start": start, "end": end}}),
        json!({"name": "asOf", "valueDateTime": as_of}),
        integer(
            "patients",
            u32::try_from(patients.len()).unwrap_or(u32::MAX),
        ),
        json!({"name": "overall", "part": figure_parts(overall)}),
    ];
    for (id, f, active) in patients {
        let mut parts = vec![
            json!({"name": "patient", "valueReference": {"reference": format!("Patient/{id}")}}),
            integer("activeDays30", *active),
        ];
        parts.extend(figure_parts(f));
        params.push(json!({"name": "patient", "part": parts}));
    }
    json!({"resourceType": "Parameters", "parameter": params})
}

/// The figures of many patients as CSV: the sum, then one row per patient.
pub fn clinic_csv(overall: &Figures, patients: &[(String, Figures, u32)]) -> String {
    let mut out = String::from(
        "scope,patient,due,completed,missed,late,exercise_adherence_pct,session_adherence_pct,dose_adherence_pct,pain_mean,active_days_30,formula_version\n",
    );
    let mut row = |scope: &str, patient: &str, f: &Figures, active: &str| {
        let fields = [
            scope.to_string(),
            patient.to_string(),
            f.due.to_string(),
            f.completed.to_string(),
            f.missed.to_string(),
            f.late.to_string(),
            opt(f.exercise.percent()),
            opt(f.session.percent()),
            opt(f.dose.percent()),
            opt(f.pain.map(|t| t.mean)),
            active.to_string(),
            domain::adherence::FORMULA_VERSION.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    };
    row("overall", "", overall, "");
    for (id, f, active) in patients {
        row("patient", &format!("Patient/{id}"), f, &active.to_string());
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The same figures as CSV: one row overall, one per exercise, one per week.
pub fn to_csv(a: &Adherence, ctx: &Context<'_>) -> String {
    let mut out = String::from(
        "scope,prescription,exercise,week,week_start,due,completed,missed,late,exercise_adherence_pct,session_adherence_pct,dose_adherence_pct,pain_first,pain_last,pain_mean,difficulty_mean,active_days_30,formula_version\n",
    );
    let mut row =
        |scope: &str, rx: &str, name: &str, week: &str, start: &str, f: &Figures, active: &str| {
            let fields = [
                scope.to_string(),
                rx.to_string(),
                csv_field(name),
                week.to_string(),
                start.to_string(),
                f.due.to_string(),
                f.completed.to_string(),
                f.missed.to_string(),
                f.late.to_string(),
                opt(f.exercise.percent()),
                opt(f.session.percent()),
                opt(f.dose.percent()),
                opt(f.pain.map(|t| t.first)),
                opt(f.pain.map(|t| t.last)),
                opt(f.pain.map(|t| t.mean)),
                opt(f.difficulty.map(|t| t.mean)),
                active.to_string(),
                domain::adherence::FORMULA_VERSION.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        };
    row(
        "overall",
        "",
        "",
        "",
        "",
        &a.overall,
        &a.active_days_30.to_string(),
    );
    for (id, f) in &a.exercises {
        let (reference, name) = exercise_label(ctx, id);
        row("exercise", &reference, name, "", "", f, "");
    }
    for w in &a.weeks {
        row(
            "week",
            "",
            "",
            &w.number.to_string(),
            &w.start.to_string(),
            &w.figures,
            "",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::adherence::{Period, Record, compute};
    use domain::occurrence::Status;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;

    fn sample() -> Adherence {
        let at = |s: &str| s.parse::<Timestamp>().expect("ts");
        let rec = |day: u32, status| Record {
            exercise: "rx1".into(),
            due_from: at(&format!("2026-03-{day:02}T00:00:00Z")),
            due_until: at(&format!("2026-03-{:02}T00:00:00Z", day + 1)),
            status,
            completed_at: (status == Status::Completed)
                .then(|| at(&format!("2026-03-{day:02}T10:00:00Z"))),
            done_volume: None,
            prescribed_volume: 30,
            pain: (status == Status::Completed).then_some(2),
            difficulty: None,
        };
        compute(
            &[rec(2, Status::Completed), rec(3, Status::Failed)],
            &Period {
                start: at("2026-03-02T00:00:00Z"),
                end: at("2026-03-09T00:00:00Z"),
                now: at("2026-03-10T00:00:00Z"),
                tz: TimeZone::UTC,
            },
        )
    }

    #[test]
    fn parameters_and_csv() {
        let names = vec![("rx1".to_string(), "Heel raise, \"slow\"".to_string())];
        let ctx = Context {
            start: "2026-03-02",
            end: "2026-03-09",
            as_of: "2026-03-09T00:00:00Z",
            exercises: &names,
        };
        let p = to_parameters(&sample(), &ctx);
        assert_eq!(p["parameter"][0]["valueString"], "1");
        let overall = &p["parameter"][4];
        assert_eq!(overall["name"], "overall");
        let part = |name: &str| {
            overall["part"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(part("due")["valueInteger"], 2);
        assert_eq!(part("exerciseAdherence")["valueQuantity"]["value"], 50.0);
        assert_eq!(part("painMean")["valueDecimal"], 2.0);
        assert_eq!(
            p["parameter"][5]["part"][0]["valueReference"]["reference"],
            "ServiceRequest/rx1"
        );
        let csv = to_csv(&sample(), &ctx);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(
            lines[1].starts_with("overall,,,,,2,1,1,0,50,50,50,2,2,2,,1,1"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("\"Heel raise, \"\"slow\"\"\""));
    }
}
