//! What a resource counts for remote therapeutic monitoring: a day with data (an
//! answered measure, a device's Observation), the clinician's treatment-management
//! time (a Procedure with the project's code, its minutes the length of its
//! `performedPeriod`), or a contact with the patient (a message either way, or a call).
//! Completed exercise sessions count too; they are read from the sessions.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::canonical;

/// The code system of monitoring activities.
pub fn code_system() -> String {
    canonical("CodeSystem", "monitoring-activity")
}

/// The code of a Procedure that logs treatment-management time.
pub const TREATMENT_MANAGEMENT: &str = "treatment-management";

/// The codes of the monitoring-activity code system: (code, display).
pub const CODES: &[(&str, &str)] = &[(
    TREATMENT_MANAGEMENT,
    "Remote therapeutic monitoring treatment management: clinician time spent on the patient's monitoring data (the Procedure's performedPeriod)",
)];

/// The modes of a Communication (`medium`, v3 ParticipationMode) that are a live
/// contact: a telephone or video call.
const LIVE: &[&str] = &["PHONE", "VIDEOCONF"];
const PARTICIPATION_MODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode";

/// What counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Data,
    Time,
    Call,
    MessageFromClinician,
    MessageFromPatient,
}

impl Kind {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Time => "time",
            Kind::Call => "call",
            Kind::MessageFromClinician => "message-clinician",
            Kind::MessageFromPatient => "message-patient",
        }
    }

    pub fn from_code(code: &str) -> Option<Kind> {
        [
            Kind::Data,
            Kind::Time,
            Kind::Call,
            Kind::MessageFromClinician,
            Kind::MessageFromPatient,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The patient's id.
    pub patient: String,
    pub at: Timestamp,
    pub kind: Kind,
    /// Treatment-management minutes (`Kind::Time`).
    pub minutes: u32,
    /// Who spent the time (a reference), what was done.
    pub who: Option<String>,
    pub what: Option<String>,
}

fn patient_ref(v: Option<&Value>) -> Option<String> {
    v?.get("reference")?
        .as_str()?
        .strip_prefix("Patient/")
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
}

fn instant(v: Option<&Value>) -> Option<Timestamp> {
    v?.as_str()?.parse::<Timestamp>().ok()
}

/// `pointer` on an object (`/key/...`).
fn ptr<'a>(json: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('/')?;
    let (key, more) = rest.split_once('/').map_or((rest, ""), |(k, m)| (k, m));
    let v = json.get(key)?;
    if more.is_empty() {
        Some(v)
    } else {
        v.pointer(&format!("/{more}"))
    }
}

fn status(json: &Map<String, Value>) -> &str {
    json.get("status").and_then(Value::as_str).unwrap_or("")
}

fn has_code(v: Option<&Value>, system: &str, code: &str) -> bool {
    v.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(system)
                    && c.get("code").and_then(Value::as_str) == Some(code)
            })
        })
}

/// Whether a Procedure logs treatment-management time (the project's code).
pub fn is_time_entry(json: &Map<String, Value>) -> bool {
    has_code(json.get("code"), &code_system(), TREATMENT_MANAGEMENT)
}

/// The event a resource stands for, if it counts.
pub fn event_of(resource_type: &str, json: &Map<String, Value>) -> Option<Event> {
    let event = |patient: String, at: Timestamp, kind: Kind| Event {
        patient,
        at,
        kind,
        minutes: 0,
        who: None,
        what: None,
    };
    match resource_type {
        "QuestionnaireResponse" if matches!(status(json), "completed" | "amended") => {
            let patient = patient_ref(json.get("subject"))?;
            Some(event(patient, instant(json.get("authored"))?, Kind::Data))
        }
        "Observation"
            if json.contains_key("device")
                && matches!(
                    status(json),
                    "final" | "amended" | "corrected" | "preliminary"
                ) =>
        {
            let patient = patient_ref(json.get("subject"))?;
            let at = instant(json.get("effectiveDateTime"))
                .or_else(|| instant(json.get("effectiveInstant")))
                .or_else(|| instant(json.get("effectivePeriod").and_then(|p| p.get("start"))))
                .or_else(|| instant(json.get("issued")))?;
            Some(event(patient, at, Kind::Data))
        }
        "Procedure"
            if status(json) == "completed"
                && has_code(json.get("code"), &code_system(), TREATMENT_MANAGEMENT) =>
        {
            let patient = patient_ref(json.get("subject"))?;
            let period = json.get("performedPeriod")?;
            let (start, end) = (instant(period.get("start"))?, instant(period.get("end"))?);
            let minutes =
                u32::try_from(end.duration_since(start).as_secs().max(0) / 60).unwrap_or(u32::MAX);
            let who = ptr(json, "/performer/0/actor/reference")
                .and_then(Value::as_str)
                .map(str::to_string);
            let what = ptr(json, "/note/0/text")
                .or_else(|| ptr(json, "/code/text"))
                .and_then(Value::as_str)
                .map(str::to_string);
            Some(Event {
                patient,
                at: start,
                kind: Kind::Time,
                minutes,
                who,
                what,
            })
        }
        "Communication" if matches!(status(json), "completed" | "in-progress") => {
            let at = instant(json.get("sent"))?;
            let recipients: Vec<&Value> = json
                .get("recipient")
                .and_then(Value::as_array)
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            let patient = patient_ref(json.get("subject"))
                .or_else(|| recipients.iter().find_map(|r| patient_ref(Some(r))))
                .or_else(|| patient_ref(json.get("sender")))?;
            let live = json
                .get("medium")
                .and_then(Value::as_array)
                .is_some_and(|m| {
                    m.iter().any(|c| {
                        LIVE.iter()
                            .any(|code| has_code(Some(c), PARTICIPATION_MODE, code))
                    })
                });
            let sender = ptr(json, "/sender/reference")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = if live {
                Kind::Call
            } else if sender == format!("Patient/{patient}") || sender.starts_with("RelatedPerson/")
            {
                Kind::MessageFromPatient
            } else if sender.starts_with("Practitioner/") || sender.starts_with("PractitionerRole/")
            {
                Kind::MessageFromClinician
            } else {
                return None;
            };
            Some(event(patient, at, kind))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn what_counts() {
        let time = obj(json!({"resourceType": "Procedure", "status": "completed",
            "code": {"coding": [{"system": code_system(), "code": TREATMENT_MANAGEMENT}]},
            "subject": {"reference": "Patient/p"},
            "performedPeriod": {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:12:30Z"},
            "performer": [{"actor": {"reference": "Practitioner/t"}}],
            "note": [{"text": "Reviewed pain trend"}]}));
        let e = event_of("Procedure", &time);
        assert_eq!(
            e.as_ref().map(|e| (e.kind, e.minutes)),
            Some((Kind::Time, 12))
        );
        assert_eq!(e.and_then(|e| e.who).as_deref(), Some("Practitioner/t"));

        let from_patient = obj(
            json!({"resourceType": "Communication", "status": "completed",
            "sender": {"reference": "Patient/p"}, "recipient": [{"reference": "Practitioner/t"}],
            "sent": "2026-03-02T10:00:00+01:00"}),
        );
        assert_eq!(
            event_of("Communication", &from_patient).map(|e| (e.kind, e.patient)),
            Some((Kind::MessageFromPatient, "p".to_string()))
        );
        let call = obj(
            json!({"resourceType": "Communication", "status": "completed",
            "medium": [{"coding": [{"system": PARTICIPATION_MODE, "code": "PHONE"}]}],
            "sender": {"reference": "Practitioner/t"}, "subject": {"reference": "Patient/p"},
            "sent": "2026-03-02T10:00:00Z"}),
        );
        assert_eq!(
            event_of("Communication", &call).map(|e| e.kind),
            Some(Kind::Call)
        );
        let draft = obj(
            json!({"resourceType": "Communication", "status": "preparation",
            "sender": {"reference": "Patient/p"}, "sent": "2026-03-02T10:00:00Z"}),
        );
        assert_eq!(event_of("Communication", &draft), None);
        let device = obj(json!({"resourceType": "Observation", "status": "final",
            "device": {"reference": "Device/d"}, "subject": {"reference": "Patient/p"},
            "effectiveDateTime": "2026-03-02T07:00:00-05:00"}));
        assert_eq!(
            event_of("Observation", &device).map(|e| e.kind),
            Some(Kind::Data)
        );
        let no_device = obj(json!({"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-03-02T07:00:00Z"}));
        assert_eq!(event_of("Observation", &no_device), None);
    }
}
