//! The conformance resources of the project, built from the same constants the mapping
//! uses: the dosage extension and the profiles as StructureDefinitions, the code systems
//! (sides, session reports, referral outputs, ...). The server stores them at start so
//! clients can read them.

use serde_json::{Value, json};

use super::{CANONICAL_BASE, dosage, prescription, referral, session};

/// Version of the project's conformance resources.
pub const VERSION: &str = "0.1.0";
const DATE: &str = "2026-11-27";
const PUBLISHER: &str = "HEP FHIR backend";

/// Sub-extensions of the dosage extension: (url, value types, max, short description).
pub const DOSAGE_PARTS: &[(&str, &[&str], &str)] = &[
    ("sets", &["positiveInt"], "Number of sets (1-20)"),
    (
        "repetitions",
        &["positiveInt", "Range"],
        "Repetitions per set, or a range (1-300)",
    ),
    (
        "hold",
        &["Duration"],
        "Seconds each repetition is held (1-600 s)",
    ),
    ("rest", &["Duration"], "Rest between sets (0-1800 s)"),
    (
        "load",
        &["Quantity"],
        "External load in kg or [lb_av] (up to 500)",
    ),
    (
        "resistance",
        &["string"],
        "A named resistance instead of a weight (e.g. red band)",
    ),
    ("tempo", &["string"], "Seconds down-pause-up, e.g. 3-1-3"),
    (
        "side",
        &["Coding"],
        "Side of the body (exercise-side code system)",
    ),
    ("targetEffort", &["integer"], "Target effort, RPE 0-10"),
];

fn element(id: &str, extra: Value) -> Value {
    let path: String = id
        .split('.')
        .map(|part| part.split(':').next().unwrap_or(part))
        .collect::<Vec<_>>()
        .join(".");
    let mut e = json!({"id": id, "path": path});
    if let (Some(obj), Value::Object(more)) = (e.as_object_mut(), extra) {
        obj.extend(more);
    }
    e
}

/// What distinguishes one of the project's StructureDefinitions.
struct Definition<'a> {
    id: &'a str,
    name: &'a str,
    title: &'a str,
    description: &'a str,
    kind: &'a str,
    /// The FHIR type constrained (`Extension`, `ServiceRequest`, ...).
    base: &'a str,
    context: Option<Value>,
}

/// A StructureDefinition (a constraint on `d.base`) with the project's metadata.
fn structure_definition(d: Definition<'_>, elements: Vec<Value>) -> Value {
    let mut sd = json!({
        "resourceType": "StructureDefinition",
        "id": d.id,
        "url": format!("{CANONICAL_BASE}/StructureDefinition/{}", d.id),
        "version": VERSION,
        "name": d.name,
        "title": d.title,
        "status": "draft",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": d.description,
        "fhirVersion": "4.0.1",
        "kind": d.kind,
        "abstract": false,
        "type": d.base,
        "baseDefinition": format!("http://hl7.org/fhir/StructureDefinition/{}", d.base),
        "derivation": "constraint",
        "differential": {"element": elements}
    });
    if let Some(c) = d.context {
        sd["context"] = c;
    }
    sd
}

/// The dosage extension.
pub fn dosage_extension() -> Value {
    let mut elements = vec![
        element(
            "Extension",
            json!({"short": "Exercise dosage", "definition": "The dose of one prescribed exercise.", "min": 0, "max": "1"}),
        ),
        element(
            "Extension.extension",
            json!({"slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"}, "min": 1}),
        ),
    ];
    for (url, types, short) in DOSAGE_PARTS {
        let slice = format!("Extension.extension:{url}");
        elements.push(element(
            &slice,
            json!({"sliceName": url, "short": short, "definition": short, "min": 0, "max": "1"}),
        ));
        elements.push(element(&format!("{slice}.url"), json!({"fixedUri": url})));
        let types: Vec<Value> = types.iter().map(|t| json!({"code": t})).collect();
        elements.push(element(
            &format!("{slice}.value[x]"),
            json!({"min": 1, "type": types}),
        ));
    }
    elements.push(element(
        "Extension.url",
        json!({"fixedUri": dosage::extension_url()}),
    ));
    elements.push(element("Extension.value[x]", json!({"max": "0"})));
    structure_definition(
        Definition {
            id: "exercise-dosage",
            name: "ExerciseDosage",
            title: "Exercise dosage",
            description: "The dose of one prescribed exercise: sets, repetitions, hold, rest, load or resistance, tempo, side and target effort. Always mirrored in words in ServiceRequest.patientInstruction.",
            kind: "complex-type",
            base: "Extension",
            context: Some(
                json!([{"type": "element", "expression": "ServiceRequest"}, {"type": "element", "expression": "ActivityDefinition"}]),
            ),
        },
        elements,
    )
}

fn exercise_therapy_category(path: &str) -> Vec<Value> {
    vec![
        element(
            path,
            json!({"slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}, "min": 1}),
        ),
        element(
            &format!("{path}:exerciseTherapy"),
            json!({"sliceName": "exerciseTherapy", "min": 1, "max": "1",
                   "patternCodeableConcept": {"coding": [{"system": prescription::EXERCISE_THERAPY.0, "code": prescription::EXERCISE_THERAPY.1}]}}),
        ),
    ]
}

/// The exercise prescription profile of ServiceRequest.
pub fn prescription_profile() -> Value {
    let mut elements = vec![
        element(
            "ServiceRequest",
            json!({"short": "Home exercise prescription"}),
        ),
        element(
            "ServiceRequest.extension",
            json!({"slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}}),
        ),
        element(
            "ServiceRequest.extension:dosage",
            json!({"sliceName": "dosage", "min": 1, "max": "1",
            "type": [{"code": "Extension", "profile": [dosage::extension_url()]}]}),
        ),
        element(
            "ServiceRequest.instantiatesCanonical",
            json!({"short": "The library exercise (url|version)", "min": 1, "max": "1"}),
        ),
        element(
            "ServiceRequest.status",
            json!({"short": "draft | active | on-hold | completed | revoked"}),
        ),
        element("ServiceRequest.intent", json!({"short": "order | plan"})),
    ];
    elements.extend(exercise_therapy_category("ServiceRequest.category"));
    elements.extend([
        element("ServiceRequest.code", json!({"short": "The exercise (its name in text)", "min": 1})),
        element("ServiceRequest.subject", json!({"type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}]})),
        element("ServiceRequest.occurrence[x]", json!({"min": 1, "type": [{"code": "Timing"}]})),
        element("ServiceRequest.performer", json!({"short": "The patient", "min": 1})),
        element("ServiceRequest.patientInstruction", json!({"short": "The whole dose in words (written by the server)", "min": 1})),
    ]);
    structure_definition(
        Definition {
            id: "hep-exercise-prescription",
            name: "HepExercisePrescription",
            title: "Home exercise prescription",
            description: "One prescribed exercise of a home exercise program, with its dose (exercise-dosage extension) and schedule (occurrenceTiming). The server writes patientInstruction and the narrative from them. Not edited once active: a new prescription replaces it.",
            kind: "resource",
            base: "ServiceRequest",
            context: None,
        },
        elements,
    )
}

/// The program profile of CarePlan.
pub fn program_profile() -> Value {
    let mut elements = vec![
        element("CarePlan", json!({"short": "Home exercise program"})),
        element(
            "CarePlan.text",
            json!({"short": "Every exercise with its dose in words (written by the server)", "min": 1}),
        ),
        element(
            "CarePlan.status",
            json!({"short": "draft | active | on-hold | completed | revoked"}),
        ),
        element("CarePlan.intent", json!({"fixedCode": "plan"})),
    ];
    elements.extend(exercise_therapy_category("CarePlan.category"));
    elements.extend([
        element("CarePlan.subject", json!({"type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"]}]})),
        element("CarePlan.activity.reference", json!({"min": 1, "type": [{"code": "Reference", "targetProfile": [prescription::profile_url()]}]})),
        element("CarePlan.activity.detail", json!({"max": "0"})),
    ]);
    structure_definition(
        Definition {
            id: "hep-program",
            name: "HepProgram",
            title: "Home exercise program",
            description: "A home exercise program: one activity per prescribed exercise (hep-exercise-prescription ServiceRequests of the same patient); the server writes the narrative listing every exercise with its dose in words.",
            kind: "resource",
            base: "CarePlan",
            context: None,
        },
        elements,
    )
}

/// The exercise session profile of Task.
pub fn session_profile() -> Value {
    let target = |t: &str| json!([{"code": "Reference", "targetProfile": [t]}]);
    let elements = vec![
        element(
            "Task",
            json!({"short": "One scheduled exercise session (created by the server)"}),
        ),
        element(
            "Task.extension",
            json!({"slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}}),
        ),
        element(
            "Task.extension:completedLate",
            json!({"sliceName": "completedLate", "min": 0, "max": "1",
                   "type": [{"code": "Extension", "profile": [session::late_extension_url()]}]}),
        ),
        element(
            "Task.status",
            json!({"short": "requested | completed | failed | cancelled"}),
        ),
        element(
            "Task.statusReason",
            json!({"short": "Why it failed or was cancelled (session-status-reason)"}),
        ),
        element("Task.intent", json!({"fixedCode": "order"})),
        element(
            "Task.focus",
            json!({"min": 1, "type": target(&prescription::profile_url())}),
        ),
        element(
            "Task.basedOn",
            json!({"min": 1, "max": "1", "type": target(&super::program::profile_url())}),
        ),
        element(
            "Task.for",
            json!({"min": 1, "type": target("http://hl7.org/fhir/StructureDefinition/Patient")}),
        ),
        element("Task.owner", json!({"short": "The patient", "min": 1})),
        element(
            "Task.executionPeriod",
            json!({"short": "When the patient did it (required when completed)"}),
        ),
        element(
            "Task.restriction.period",
            json!({"short": "The due window", "min": 1}),
        ),
        element(
            "Task.output",
            json!({"short": "Sets and repetitions done, pain (LOINC 72514-3), difficulty, note"}),
        ),
        element(
            "Task.output.type",
            json!({"short": "exercise-report code, or LOINC 72514-3"}),
        ),
        element(
            "Task.output.value[x]",
            json!({"type": [{"code": "integer"}, {"code": "string"}]}),
        ),
    ];
    structure_definition(
        Definition {
            id: "hep-exercise-session",
            name: "HepExerciseSession",
            title: "Exercise session",
            description: "One scheduled occurrence of a prescribed exercise: created by the server when a program is active, completed by the patient's app with what was done, failed by the server when its window passes, cancelled when the program changes.",
            kind: "resource",
            base: "Task",
            context: None,
        },
        elements,
    )
}

/// The extension marking a session completed after its window.
pub fn late_extension() -> Value {
    structure_definition(
        Definition {
            id: "completed-late",
            name: "CompletedLate",
            title: "Completed late",
            description: "Set by the server on an exercise session completed after its due window closed.",
            kind: "complex-type",
            base: "Extension",
            context: Some(json!([{"type": "element", "expression": "Task"}])),
        },
        vec![
            element(
                "Extension",
                json!({"short": "Completed after its window", "max": "1"}),
            ),
            element("Extension.extension", json!({"max": "0"})),
            element(
                "Extension.url",
                json!({"fixedUri": session::late_extension_url()}),
            ),
            element(
                "Extension.value[x]",
                json!({"min": 1, "type": [{"code": "boolean"}]}),
            ),
        ],
    )
}

/// What a patient reports for a session.
pub fn report_code_system() -> Value {
    let concepts: Vec<(&str, &str)> = session::REPORT_CODES
        .iter()
        .map(|(c, d, _)| (*c, *d))
        .collect();
    code_system(
        "exercise-report",
        "ExerciseReport",
        "Exercise report",
        "What a patient reports for an exercise session (Task.output types); pain is LOINC 72514-3.",
        &concepts,
    )
}

/// The adherence measures.
pub fn measure_code_system() -> Value {
    code_system(
        "adherence-measure",
        "AdherenceMeasure",
        "Adherence measure",
        "Adherence figures of home exercise programs (weekly summary Observations and their components).",
        super::adherence::MEASURES,
    )
}

/// Why a session failed or was cancelled.
pub fn reason_code_system() -> Value {
    code_system(
        "session-status-reason",
        "SessionStatusReason",
        "Session status reason",
        "Why an exercise session failed or was cancelled.",
        session::REASONS,
    )
}

/// What the clinic returns for a referral.
pub fn referral_output_code_system() -> Value {
    code_system(
        "referral-output",
        "ReferralOutput",
        "Referral output",
        "What the clinic returns for a referral Task (Task.output types): the home exercise program (CarePlan) and its adherence summary.",
        referral::OUTPUT_CODES,
    )
}

/// The code system of sides.
pub fn side_code_system() -> Value {
    let concepts: Vec<Value> = [
        ("left", "Left side", "The exercise is done with the left side."),
        ("right", "Right side", "The exercise is done with the right side."),
        ("both", "Both sides", "The exercise is done with both sides together, or each side in full."),
        ("alternating", "Alternating sides", "The exercise alternates between sides from one repetition to the next."),
    ]
    .iter()
    .map(|(code, display, definition)| json!({"code": code, "display": display, "definition": definition}))
    .collect();
    json!({
        "resourceType": "CodeSystem",
        "id": "exercise-side",
        "url": dosage::side_system(),
        "version": VERSION,
        "name": "ExerciseSide",
        "title": "Exercise side",
        "status": "draft",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "Which side of the body a prescribed exercise is done with.",
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "concept": concepts
    })
}

fn code_system(
    id: &str,
    name: &str,
    title: &str,
    description: &str,
    concepts: &[(&str, &str)],
) -> Value {
    let concepts: Vec<Value> = concepts
        .iter()
        .map(|(code, display)| json!({"code": code, "display": display}))
        .collect();
    json!({
        "resourceType": "CodeSystem",
        "id": id,
        "url": format!("{CANONICAL_BASE}/CodeSystem/{id}"),
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "draft",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "concept": concepts
    })
}

/// Body regions of the exercise library (`ActivityDefinition.topic`).
pub fn body_region_code_system() -> Value {
    code_system(
        "body-region",
        "BodyRegion",
        "Body region",
        "The body region a library exercise works on.",
        &[
            ("neck", "Neck"),
            ("shoulder", "Shoulder"),
            ("elbow-wrist", "Elbow and wrist"),
            ("back", "Back"),
            ("core", "Core"),
            ("hip", "Hip"),
            ("knee", "Knee"),
            ("ankle", "Ankle and foot"),
            ("balance", "Balance"),
        ],
    )
}

/// Where library content comes from (`meta.tag`).
pub fn content_origin_code_system() -> Value {
    code_system(
        "content-origin",
        "ContentOrigin",
        "Content origin",
        "Where an exercise or template comes from.",
        &[("starter", "Starter content: review before use")],
    )
}

/// The `$handout` operation of CarePlan.
pub fn handout_operation() -> Value {
    json!({
        "resourceType": "OperationDefinition",
        "id": "CarePlan-handout",
        "url": format!("{CANONICAL_BASE}/OperationDefinition/CarePlan-handout"),
        "version": VERSION,
        "name": "Handout",
        "title": "Take-home sheet of a home exercise program",
        "status": "draft",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "The printable take-home sheet of a home exercise program (hep-program CarePlan): patient, therapist and contact, program period, and every exercise with its steps and its whole dose in words. Answered as text/html (print-ready, A4) or as application/pdf, by `Accept` or `_format` (`html`, `pdf`).",
        "affectsState": false,
        "code": "handout",
        "resource": ["CarePlan"],
        "system": false,
        "type": false,
        "instance": true,
        "outputProfile": "http://hl7.org/fhir/StructureDefinition/Binary",
        "parameter": [{
            "name": "return",
            "use": "out",
            "min": 1,
            "max": "1",
            "documentation": "The sheet, as the body of the answer (text/html or application/pdf).",
            "type": "Binary"
        }]
    })
}

/// The `$adherence` operation of CarePlan and Patient.
pub fn adherence_operation() -> Value {
    let param = |name: &str, use_: &str, min: u32, max: &str, ty: &str, doc: &str| {
        let mut p =
            json!({"name": name, "use": use_, "min": min, "max": max, "documentation": doc});
        // a parameter made of parts has no type
        if !ty.is_empty() {
            p["type"] = json!(ty);
        }
        p
    };
    json!({
        "resourceType": "OperationDefinition",
        "id": "adherence",
        "url": format!("{CANONICAL_BASE}/OperationDefinition/adherence"),
        "version": VERSION,
        "name": "Adherence",
        "title": "Adherence of a home exercise program or of a patient",
        "status": "draft",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "Adherence figures computed from the exercise sessions (hep-exercise-session Tasks) of a program (CarePlan) or of all programs of a patient: overall, per exercise and per week, due, completed, missed and late sessions, exercise, session and dose adherence, pain and difficulty trends, and active days in the last 30 days. Definitions and formula version in the project's documentation. On a Group (its patients) or on the whole server (every patient of the clinic; default period: the 28 days up to now), each patient's overall figures and their sum. Answered as Parameters, or as text/csv (Accept or _format=csv).",
        "affectsState": false,
        "code": "adherence",
        "resource": ["CarePlan", "Patient", "Group"],
        "system": true,
        "type": false,
        "instance": true,
        "parameter": [
            param("start", "in", 0, "1", "dateTime", "Start of the period (a date is the start of that day in the patient's time zone); default: the first session."),
            param("end", "in", 0, "1", "dateTime", "End of the period, exclusive (a date includes that whole day); default: the end of the last session."),
            param("formulaVersion", "out", 1, "1", "string", "The version of the formulas."),
            param("period", "out", 1, "1", "Period", "The period the figures cover."),
            param("asOf", "out", 1, "1", "dateTime", "Sessions are due when their window closed by this instant (the end of the period, or now if earlier)."),
            param("activeDays30", "out", 1, "1", "integer", "Days with at least one completed session in the 30 days up to asOf."),
            param("overall", "out", 1, "1", "", "Figures over the period (parts: due, completed, missed, late, exerciseAdherence, sessionAdherence, doseAdherence as % quantities, painFirst, painLast, painMean, painReports, difficulty...)."),
            param("exercise", "out", 0, "*", "", "Figures per prescription (parts: prescription, name, and the figures)."),
            param("week", "out", 0, "*", "", "Figures per week of the period (parts: number, start, and the figures)."),
            param("patients", "out", 0, "1", "integer", "On a Group or the server: how many patients have sessions in the period."),
            param("patient", "out", 0, "*", "", "On a Group or the server: per patient (parts: patient, activeDays30, and the figures).")
        ]
    })
}

/// The `$invite` operation of Patient.
pub fn invite_operation() -> Value {
    json!({
        "resourceType": "OperationDefinition",
        "id": "Patient-invite",
        "url": format!("{CANONICAL_BASE}/OperationDefinition/Patient-invite"),
        "version": VERSION,
        "name": "Invite",
        "title": "Invite a patient to create their account",
        "status": "draft",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "A new one-time code (8 characters, valid 7 days) with which the patient creates their account on the server's code page (username and password; the patient's birth date is asked when the Patient has one). A patient who has an account keeps it: redeeming the code replaces its username and password and ends the access of the apps they had allowed. The patient's earlier codes are void. Needs a user or system token that may update the Patient.",
        "affectsState": true,
        "code": "invite",
        "resource": ["Patient"],
        "system": false,
        "type": false,
        "instance": true,
        "parameter": [
            {"name": "code", "use": "out", "min": 1, "max": "1", "type": "string", "documentation": "The code to give the patient. It is shown once: the server keeps only its hash."},
            {"name": "expires", "use": "out", "min": 1, "max": "1", "type": "instant", "documentation": "When the code stops working."},
            {"name": "url", "use": "out", "min": 1, "max": "1", "type": "uri", "documentation": "The page where the patient types the code."}
        ]
    })
}

/// The `$revoke-access` operation of Patient.
pub fn revoke_access_operation() -> Value {
    json!({
        "resourceType": "OperationDefinition",
        "id": "Patient-revoke-access",
        "url": format!("{CANONICAL_BASE}/OperationDefinition/Patient-revoke-access"),
        "version": VERSION,
        "name": "RevokeAccess",
        "title": "End a patient's access",
        "status": "draft",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "Ends the patient's own access: their unused invitation codes are void, their account is disabled and the access of every app they had allowed ends, until they redeem a new invitation. Answers 204. Needs a user or system token that may update the Patient.",
        "affectsState": true,
        "code": "revoke-access",
        "resource": ["Patient"],
        "system": false,
        "type": false,
        "instance": true
    })
}

/// The search parameter on the due window of an exercise session.
pub fn due_window_search_parameter() -> Value {
    let p = crate::search_params::DUE_WINDOW;
    json!({
        "resourceType": "SearchParameter",
        "id": "Task-restriction-period",
        "url": p.definition,
        "version": VERSION,
        "name": "restriction-period",
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "The due window of an exercise session (`Task.restriction.period`): when the patient is to do the exercise. Compared as a range, with every date prefix.",
        "code": p.name,
        "base": ["Task"],
        "type": "date",
        "expression": "Task.restriction.period",
        "xpath": "f:Task/f:restriction/f:period",
        "xpathUsage": "normal",
        "comparator": ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
    })
}

/// The search parameter on the local day of an exercise session.
pub fn session_day_search_parameter() -> Value {
    let p = crate::search_params::SESSION_DAY;
    json!({
        "resourceType": "SearchParameter",
        "id": "Task-session-day",
        "url": p.definition,
        "version": VERSION,
        "name": "session-day",
        "status": "active",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": "The patient's local day of an exercise session: the date of `Task.restriction.period.start` as written, in the patient's offset. `session-day=2026-12-02` finds the sessions of that day in the patient's time zone whatever the server's or the client's zone; `ge`/`le` give a range of days.",
        "code": p.name,
        "base": ["Task"],
        "type": "date",
        "expression": "Task.restriction.period.start",
        "xpath": "f:Task/f:restriction/f:period/f:start",
        "xpathUsage": "normal",
        "comparator": ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
    })
}

/// A simple extension with one value of `value_type` on `context`.
fn simple_extension(
    id: &str,
    name: &str,
    title: &str,
    description: &str,
    context: &str,
    value_type: &str,
) -> Value {
    structure_definition(
        Definition {
            id,
            name,
            title,
            description,
            kind: "complex-type",
            base: "Extension",
            context: Some(json!([{"type": "element", "expression": context}])),
        },
        vec![
            element("Extension", json!({"short": title, "max": "1"})),
            element("Extension.extension", json!({"max": "0"})),
            element(
                "Extension.url",
                json!({"fixedUri": format!("{CANONICAL_BASE}/StructureDefinition/{id}")}),
            ),
            element(
                "Extension.value[x]",
                json!({"min": 1, "type": [{"code": value_type}]}),
            ),
        ],
    )
}

/// The extension asking for a measure's answer at discharge.
pub fn at_discharge_extension() -> Value {
    simple_extension(
        "measure-at-discharge",
        "MeasureAtDischarge",
        "Outcome measure at discharge",
        "On an outcome-measure activity of a program: the measure is also due when the program is completed.",
        "CarePlan.activity.detail",
        "boolean",
    )
}

/// The extension stating a program's remote therapeutic monitoring episode.
pub fn rtm_episode_extension() -> Value {
    simple_extension(
        "rtm-episode",
        "RtmEpisode",
        "Remote therapeutic monitoring episode",
        "On a program: the first day (and, once ended, the last) of its remote therapeutic monitoring episode, dates in the patient's time zone; 30-day periods count from the first day.",
        "CarePlan",
        "Period",
    )
}

/// The outcome-measure Task profile.
pub fn outcome_task_profile() -> Value {
    structure_definition(
        Definition {
            id: "hep-outcome-task",
            name: "HepOutcomeTask",
            title: "Outcome measure due",
            description: "One due answer of an outcome measure a program assigns: made by the server (at the program's start, every N days or weeks, at discharge), completed by the server when the patient's QuestionnaireResponse arrives (outputs: the response and its score Observation), failed when its window passes, cancelled when the program stops. Clients do not write it.",
            kind: "resource",
            base: "Task",
            context: None,
        },
        vec![
            element(
                "Task",
                json!({"short": "An outcome measure to answer (made by the server)"}),
            ),
            element("Task.intent", json!({"fixedCode": "order"})),
            element("Task.basedOn", json!({"min": 1, "max": "1"})),
            element("Task.for", json!({"min": 1})),
            element(
                "Task.restriction.period",
                json!({"short": "The due window", "min": 1}),
            ),
            element(
                "Task.input",
                json!({"short": "The Questionnaire (valueCanonical)", "min": 1}),
            ),
        ],
    )
}

/// The outcome score Observation profile.
pub fn outcome_score_profile() -> Value {
    structure_definition(
        Definition {
            id: "hep-outcome-score",
            name: "HepOutcomeScore",
            title: "Outcome measure score",
            description: "The score of one answered outcome measure, written by the server in the transaction that stores the QuestionnaireResponse: derivedFrom the response, the change from baseline as a component, and an interpretation when the change reaches the measure's minimal clinically important difference (or worsens by it).",
            kind: "resource",
            base: "Observation",
            context: None,
        },
        vec![
            element(
                "Observation",
                json!({"short": "An outcome score (made by the server)"}),
            ),
            element("Observation.derivedFrom", json!({"min": 1})),
            element("Observation.subject", json!({"min": 1})),
        ],
    )
}

/// The outcome-measure code system.
pub fn outcome_code_system() -> Value {
    let mut codes: Vec<(&str, &str)> = super::measures::CODES.to_vec();
    for c in super::outcome_task::CODES {
        if !codes.iter().any(|(k, _)| k == &c.0) {
            codes.push(*c);
        }
    }
    code_system(
        "outcome-measure",
        "OutcomeMeasure",
        "Outcome measure",
        "Outcome measures of home exercise programs: the starter instruments' scores, the change from baseline, the minimal clinically important difference, and the codes of the due-measure Task.",
        &codes,
    )
}

/// The monitoring-activity code system.
pub fn monitoring_code_system() -> Value {
    code_system(
        "monitoring-activity",
        "MonitoringActivity",
        "Monitoring activity",
        "Remote therapeutic monitoring: a Procedure with this code logs the clinician's treatment-management time (its performedPeriod).",
        super::monitoring::CODES,
    )
}

fn operation(
    id: &str,
    name: &str,
    title: &str,
    description: &str,
    resource: &[&str],
    system: bool,
    parameters: Vec<Value>,
) -> Value {
    json!({
        "resourceType": "OperationDefinition",
        "id": id,
        "url": format!("{CANONICAL_BASE}/OperationDefinition/{id}"),
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "draft",
        "kind": "operation",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "affectsState": false,
        "code": id,
        "resource": resource,
        "system": system,
        "type": false,
        "instance": true,
        "parameter": parameters
    })
}

fn op_param(name: &str, use_: &str, min: u32, max: &str, ty: &str, doc: &str) -> Value {
    let mut p = json!({"name": name, "use": use_, "min": min, "max": max, "documentation": doc});
    if !ty.is_empty() {
        p["type"] = json!(ty);
    }
    p
}

/// The `$outcomes` operation of CarePlan and Patient.
pub fn outcomes_operation() -> Value {
    operation(
        "outcomes",
        "Outcomes",
        "Outcome measure scores of a program or of a patient",
        "Each outcome measure's scores over time (from the server's score Observations), the baseline, the latest score, the change from baseline and whether the minimal clinically important difference is reached. Answered as Parameters, or as text/csv (Accept or _format=csv).",
        &["CarePlan", "Patient"],
        false,
        vec![
            op_param(
                "subject",
                "out",
                1,
                "1",
                "Reference",
                "The program or the patient.",
            ),
            op_param(
                "measure",
                "out",
                0,
                "*",
                "",
                "One per measure (parts: questionnaire, title, direction, mcid, baseline, latest, change, mcidReached, and one score part per answer: date, value, change, mcidReached, observation).",
            ),
        ],
    )
}

/// The `$rtm` operation of Patient, Group and the server.
pub fn rtm_operation() -> Value {
    operation(
        "rtm",
        "Rtm",
        "Remote therapeutic monitoring periods",
        "Per patient and program with a remote therapeutic monitoring episode (rtm-episode extension), the 30-day periods that overlap start..end: days with data (completed sessions, answered measures, device Observations, in the patient's time zone), the clinician's treatment-management minutes (Procedures with the monitoring-activity code), whether an interactive communication took place, and the CPT codes the period supports under the rules of the stated year. Answered as Parameters, or as text/csv (Accept or _format=csv).",
        &["Patient", "Group"],
        true,
        vec![
            op_param(
                "start",
                "in",
                0,
                "1",
                "date",
                "First day asked for; default: 29 days before end.",
            ),
            op_param(
                "end",
                "in",
                0,
                "1",
                "date",
                "Last day asked for (included); default: today.",
            ),
            op_param(
                "rulesYear",
                "out",
                1,
                "1",
                "integer",
                "The year of the CPT rules applied.",
            ),
            op_param(
                "patient",
                "out",
                0,
                "*",
                "",
                "One per patient and program (parts: patient, program, episodeStart, and one period part per period: number, start, end, complete, daysWithData, minutes, interactiveCommunication, realTimeContact, a code part per supported code, an entry part per logged time).",
            ),
        ],
    )
}

/// Every conformance resource of the project, as `(resource type, id, JSON)`.
pub fn all() -> Vec<(&'static str, &'static str, Value)> {
    let mut all = own();
    for (id, codes) in super::measures::ANSWER_CODE_SYSTEMS {
        all.push(("CodeSystem", id, answer_code_system(id, codes)));
    }
    all
}

/// A code system of a starter measure's answers (each code its item's value).
fn answer_code_system(id: &str, codes: &[(&str, &str)]) -> Value {
    let title = match id {
        "lefs-difficulty" => "Lower Extremity Functional Scale: difficulty",
        "global-rating-of-change" => "Global Rating of Change",
        other => other,
    };
    let name: String = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    code_system(
        id,
        &name,
        title,
        &format!(
            "The answers of the starter outcome measure ({title}); each code is the answer's value in the score."
        ),
        codes,
    )
}

/// The project's own conformance resources but the measures' answer code systems.
fn own() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("StructureDefinition", "exercise-dosage", dosage_extension()),
        (
            "StructureDefinition",
            "hep-exercise-prescription",
            prescription_profile(),
        ),
        ("StructureDefinition", "hep-program", program_profile()),
        (
            "StructureDefinition",
            "hep-exercise-session",
            session_profile(),
        ),
        ("StructureDefinition", "completed-late", late_extension()),
        (
            "StructureDefinition",
            "measure-at-discharge",
            at_discharge_extension(),
        ),
        (
            "StructureDefinition",
            "rtm-episode",
            rtm_episode_extension(),
        ),
        (
            "StructureDefinition",
            "hep-outcome-task",
            outcome_task_profile(),
        ),
        (
            "StructureDefinition",
            "hep-outcome-score",
            outcome_score_profile(),
        ),
        ("CodeSystem", "outcome-measure", outcome_code_system()),
        (
            "CodeSystem",
            "monitoring-activity",
            monitoring_code_system(),
        ),
        ("OperationDefinition", "outcomes", outcomes_operation()),
        ("OperationDefinition", "rtm", rtm_operation()),
        ("CodeSystem", "exercise-report", report_code_system()),
        ("CodeSystem", "session-status-reason", reason_code_system()),
        ("CodeSystem", "adherence-measure", measure_code_system()),
        ("CodeSystem", "exercise-side", side_code_system()),
        (
            "CodeSystem",
            "referral-output",
            referral_output_code_system(),
        ),
        ("CodeSystem", "body-region", body_region_code_system()),
        ("CodeSystem", "content-origin", content_origin_code_system()),
        (
            "OperationDefinition",
            "CarePlan-handout",
            handout_operation(),
        ),
        ("OperationDefinition", "adherence", adherence_operation()),
        ("OperationDefinition", "Patient-invite", invite_operation()),
        (
            "OperationDefinition",
            "Patient-revoke-access",
            revoke_access_operation(),
        ),
        (
            "SearchParameter",
            "Task-restriction-period",
            due_window_search_parameter(),
        ),
        (
            "SearchParameter",
            "Task-session-day",
            session_day_search_parameter(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hep::program;
    use crate::{Format, ParseLimits, parse_resource};

    #[test]
    fn every_resource_is_valid_r4_with_its_own_url() {
        for (t, id, json) in all() {
            let bytes = serde_json::to_vec(&json).unwrap_or_default();
            let parsed = parse_resource(&bytes, Format::Json, &ParseLimits::default())
                .unwrap_or_else(|e| panic!("{t}/{id}: {e:?}"));
            assert_eq!(parsed.resource_type(), t);
            assert_eq!(parsed.id(), Some(id));
            let url = json["url"].as_str().unwrap_or_default();
            assert!(
                url.starts_with(CANONICAL_BASE) && url.ends_with(id),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_are_the_ones_the_mapping_checks() {
        assert_eq!(dosage_extension()["url"], dosage::extension_url());
        assert_eq!(prescription_profile()["url"], prescription::profile_url());
        assert_eq!(program_profile()["url"], program::profile_url());
        assert_eq!(side_code_system()["url"], dosage::side_system());
        assert_eq!(
            referral_output_code_system()["url"],
            referral::output_system()
        );
    }

    #[test]
    fn the_extension_defines_every_part_the_mapping_writes() {
        let sd = dosage_extension();
        let slices: Vec<&str> = sd["differential"]["element"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["sliceName"].as_str()).collect())
            .unwrap_or_default();
        // a dose with every part, written by the mapping
        use domain::dose::*;
        let dose = Dose::new(DoseParts {
            sets: SetCount::new(2).ok(),
            repetitions: Repetitions::exactly(5).ok(),
            hold: HoldSeconds::new(3).ok(),
            rest: RestSeconds::new(30).ok(),
            load: Load::weight_tenths(20, WeightUnit::Kilogram).ok(),
            tempo: Tempo::parse("2-0-2").ok(),
            side: Some(Side::Right),
            effort: Effort::new(5).ok(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let ext = dosage::to_extension(&dose);
        for part in ext["extension"].as_array().into_iter().flatten() {
            let url = part["url"].as_str().unwrap_or_default();
            assert!(
                slices.contains(&url),
                "`{url}` is not defined in the StructureDefinition"
            );
        }
        let regions = body_region_code_system();
        let region_codes: Vec<&str> = regions["concept"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str())
            .collect();
        for e in crate::hep::library::EXERCISES {
            assert!(region_codes.contains(&e.region), "{}", e.region);
        }
        let side = side_code_system();
        let codes: Vec<&str> = side["concept"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str())
            .collect();
        for s in [Side::Left, Side::Right, Side::Both, Side::Alternating] {
            assert!(codes.contains(&s.code()));
        }
    }
}
