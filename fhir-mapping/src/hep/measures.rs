//! Outcome measures: the starter set of freely usable instruments as FHIR R4
//! `Questionnaire`s (Numeric Pain Rating Scale, Patient-Specific Functional Scale, Lower
//! Extremity Functional Scale, Global Rating of Change), the check of a
//! `QuestionnaireResponse` against its Questionnaire, its score (rules in
//! [`domain::outcome`]) as an `Observation` with the change from baseline and whether the
//! minimal clinically important difference (MCID) is reached, and the answer of
//! `$outcomes` (a `Parameters` resource, or CSV). Licences and sources are in
//! `docs/outcome-measures.md`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use domain::outcome::{Direction, McidOn, Point, Rule, ScoreError, Scoring};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::library::starter_tag;
use super::{UCUM, canonical};
use crate::outcome::{Issue, IssueType};

/// Version of the starter measures (every Questionnaire's `version`).
pub const VERSION: &str = "1.0.0";

/// The project's code system of outcome measures: the scores without a LOINC code, the
/// change from baseline and the interpretations (`canonical("CodeSystem",
/// "outcome-measure")`).
pub const SYSTEM: &str = "https://hep-fhir.org/fhir/CodeSystem/outcome-measure";

const LOINC: &str = "http://loinc.org";
const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The codes of the project code system `outcome-measure` (for a CodeSystem resource the
/// api will publish): (code, display): the scores without a LOINC code, the change from
/// baseline and the interpretations.
pub const CODES: &[(&str, &str)] = &[
    (
        "psfs",
        "Patient-Specific Functional Scale score: mean of the activities rated (0-10)",
    ),
    (
        "lefs",
        "Lower Extremity Functional Scale score: sum of the 20 items (0-80)",
    ),
    (
        "groc",
        "Global Rating of Change: the change the patient reports (-7 to +7)",
    ),
    ("change-from-baseline", "Change from the baseline score"),
    (
        "mcid-reached",
        "Improved by at least the minimal clinically important difference",
    ),
    (
        "worsened",
        "Worse by at least the minimal clinically important difference",
    ),
];

/// The code systems of the answers of the starter measures, as (id, codes (code,
/// display)); their canonical is `canonical("CodeSystem", id)`, and each code is the
/// item's value (also given by the `ordinalValue` extension of each coding).
pub const ANSWER_CODE_SYSTEMS: &[(&str, &[(&str, &str)])] = &[
    ("lefs-difficulty", LEFS_ANSWERS),
    ("global-rating-of-change", GROC_ANSWERS),
];

/// One outcome measure instrument.
#[derive(Debug)]
pub struct Instrument {
    /// The Questionnaire's id (and the last part of its canonical URL).
    pub id: &'static str,
    /// Its name for people.
    pub title: &'static str,
    /// How it is scored and what an important change is.
    pub rule: Rule,
    /// (system, code, display) of the score Observation.code
    pub code: (&'static str, &'static str, &'static str),
    /// The UCUM unit of a score with decimals (`{score}`); `None` for whole-number scales,
    /// whose score is a `valueInteger`.
    pub unit: Option<&'static str>,
    /// Its terms of use, in the Questionnaire's `copyright`.
    pub licence: &'static str,
    /// Where it and its MCID come from.
    pub source: &'static str,
}

const PSFS_RATINGS: &[&str] = &["rating-1", "rating-2", "rating-3", "rating-4", "rating-5"];
const LEFS_ITEMS: &[&str] = &[
    "lefs-1", "lefs-2", "lefs-3", "lefs-4", "lefs-5", "lefs-6", "lefs-7", "lefs-8", "lefs-9",
    "lefs-10", "lefs-11", "lefs-12", "lefs-13", "lefs-14", "lefs-15", "lefs-16", "lefs-17",
    "lefs-18", "lefs-19", "lefs-20",
];

/// The 20 activities of the published LEFS (Binkley et al. 1999), in order.
const LEFS_TEXTS: &[&str] = &[
    "Any of your usual work, housework, or school activities.",
    "Your usual hobbies, recreational or sporting activities.",
    "Getting into or out of the bath.",
    "Walking between rooms.",
    "Putting on your shoes or socks.",
    "Squatting.",
    "Lifting an object, like a bag of groceries from the floor.",
    "Performing light activities around your home.",
    "Performing heavy activities around your home.",
    "Getting into or out of a car.",
    "Walking 2 blocks.",
    "Walking a mile.",
    "Going up or down 10 stairs (about 1 flight of stairs).",
    "Standing for 1 hour.",
    "Sitting for 1 hour.",
    "Running on even ground.",
    "Running on uneven ground.",
    "Making sharp turns while running fast.",
    "Hopping.",
    "Rolling over in bed.",
];

const LEFS_ANSWERS: &[(&str, &str)] = &[
    ("0", "Extreme difficulty or unable to perform activity"),
    ("1", "Quite a bit of difficulty"),
    ("2", "Moderate difficulty"),
    ("3", "A little bit of difficulty"),
    ("4", "No difficulty"),
];

const GROC_ANSWERS: &[(&str, &str)] = &[
    ("-7", "A very great deal worse"),
    ("-6", "A great deal worse"),
    ("-5", "Quite a bit worse"),
    ("-4", "Moderately worse"),
    ("-3", "Somewhat worse"),
    ("-2", "A little bit worse"),
    ("-1", "A tiny bit worse (almost the same)"),
    ("0", "About the same"),
    ("1", "A tiny bit better (almost the same)"),
    ("2", "A little bit better"),
    ("3", "Somewhat better"),
    ("4", "Moderately better"),
    ("5", "Quite a bit better"),
    ("6", "A great deal better"),
    ("7", "A very great deal better"),
];

/// The starter instruments.
pub const INSTRUMENTS: &[Instrument] = &[
    Instrument {
        id: "nprs",
        title: "Numeric Pain Rating Scale",
        rule: Rule {
            scoring: Scoring::Item("pain"),
            min: 0.0,
            max: 10.0,
            direction: Direction::LowerIsBetter,
            mcid: 2.0,
            mcid_on: McidOn::Change,
            decimals: 0,
        },
        code: (
            LOINC,
            "72514-3",
            "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        ),
        unit: None,
        licence: "The 0-10 numeric pain rating is a generic scale with no copyright holder and no licence: free to use, reproduce and distribute. The wording of this form was written for this product.",
        source: "Childs JD, Piva SR, Fritz JM. Responsiveness of the numeric pain rating scale in patients with low back pain. Spine 2005;30(11):1331-4 (MCID 2 points). Farrar JT, Young JP Jr, LaMoreaux L, Werth JL, Poole RM. Clinical importance of changes in chronic pain intensity measured on an 11-point numerical pain rating scale. Pain 2001;94(2):149-58 (about 2 points or 30 %).",
    },
    Instrument {
        id: "psfs",
        title: "Patient-Specific Functional Scale",
        rule: Rule {
            scoring: Scoring::Mean {
                items: PSFS_RATINGS,
                min_answered: 3,
            },
            min: 0.0,
            max: 10.0,
            direction: Direction::HigherIsBetter,
            mcid: 2.0,
            mcid_on: McidOn::Change,
            decimals: 1,
        },
        code: (
            SYSTEM,
            "psfs",
            "Patient-Specific Functional Scale score: mean of the activities rated (0-10)",
        ),
        unit: Some("{score}"),
        licence: "Patient-Specific Functional Scale (Stratford P, Gill C, Westaway M, Binkley J, 1995): free to use in clinical care and research; no licence, registration or fee is known to be required, and no explicit licence is published. The wording of this form was written for this product.",
        source: "Stratford P, Gill C, Westaway M, Binkley J. Assessing disability and change on individual patients: a report of a patient specific measure. Physiotherapy Canada 1995;47(4):258-63 (minimal detectable change of the mean 2 points, 90 % confidence). Abbott JH, Schmitt JS. Minimum important differences for the Patient-Specific Functional Scale, 4 region-specific outcome measures, and the numeric pain rating scale. J Orthop Sports Phys Ther 2014;44(8):560-4 (1.3 small, 2.3 medium, 2.7 large change).",
    },
    Instrument {
        id: "lefs",
        title: "Lower Extremity Functional Scale",
        rule: Rule {
            scoring: Scoring::Sum(LEFS_ITEMS),
            min: 0.0,
            max: 80.0,
            direction: Direction::HigherIsBetter,
            mcid: 9.0,
            mcid_on: McidOn::Change,
            decimals: 0,
        },
        code: (
            SYSTEM,
            "lefs",
            "Lower Extremity Functional Scale score: sum of the 20 items (0-80)",
        ),
        unit: None,
        licence: "Lower Extremity Functional Scale (Binkley JM, Stratford PW, Lott SA, Riddle DL, Physical Therapy 1999): free to use in clinical care and research; no licence, registration or fee is known to be required, but no explicit licence for redistribution is published (the items are printed in the article). Review the terms before redistributing this form commercially.",
        source: "Binkley JM, Stratford PW, Lott SA, Riddle DL. The Lower Extremity Functional Scale (LEFS): scale development, measurement properties, and clinical application. Phys Ther 1999;79(4):371-83 (minimal clinically important difference 9 points, 90 % confidence).",
    },
    Instrument {
        id: "groc",
        title: "Global Rating of Change",
        rule: Rule {
            scoring: Scoring::Item("change"),
            min: -7.0,
            max: 7.0,
            direction: Direction::HigherIsBetter,
            mcid: 3.0,
            mcid_on: McidOn::Value,
            decimals: 0,
        },
        code: (
            SYSTEM,
            "groc",
            "Global Rating of Change: the change the patient reports (-7 to +7)",
        ),
        unit: None,
        licence: "The 15-point global rating of change is a generic transition question with no copyright holder and no licence: free to use, reproduce and distribute. The wording of this form was written for this product.",
        source: "Jaeschke R, Singer J, Guyatt GH. Measurement of health status: ascertaining the minimal clinically important difference. Control Clin Trials 1989;10(4):407-15 (the 15-point transition scale, -7 to +7). Kamper SJ, Maher CG, Mackay G. Global rating of change scales: a review of strengths and weaknesses and considerations for design. J Man Manip Ther 2009;17(3):163-70. Threshold used here: +3 (somewhat better) or more for an important improvement, -3 (somewhat worse) or less for an important worsening.",
    },
];

/// Canonical URL of a measure's Questionnaire.
pub fn url(id: &str) -> String {
    canonical("Questionnaire", id)
}

/// The instrument a canonical names (`url` or `url|version`).
pub fn instrument(canonical: &str) -> Option<&'static Instrument> {
    let (base, version) = match canonical.split_once('|') {
        Some((b, v)) => (b, Some(v)),
        None => (canonical, None),
    };
    if version.is_some_and(|v| v != VERSION) {
        return None;
    }
    INSTRUMENTS.iter().find(|i| url(i.id) == base)
}

fn pascal(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn rating_options() -> Vec<Value> {
    (0..=10).map(|v| json!({"valueInteger": v})).collect()
}

fn coding_options(system_id: &str, codes: &[(&str, &str)]) -> Vec<Value> {
    let system = canonical("CodeSystem", system_id);
    codes
        .iter()
        .map(|(code, display)| {
            let ordinal: i64 = code.parse().unwrap_or_default();
            json!({"valueCoding": {
                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": ordinal}],
                "system": system, "code": code, "display": display
            }})
        })
        .collect()
}

fn items(i: &Instrument) -> Vec<Value> {
    match i.id {
        "nprs" => vec![json!({
            "linkId": "pain",
            "code": [{"system": LOINC, "code": "72514-3", "display": i.code.2}],
            "text": "What number best describes your pain right now, from 0 (no pain) to 10 (worst pain imaginable)?",
            "type": "integer",
            "required": true,
            "answerOption": rating_options()
        })],
        "psfs" => {
            let mut list = vec![json!({
                "linkId": "instructions",
                "text": "Name three (up to five) important activities that you are unable to do or have difficulty with because of your problem. Then rate how able you are to do each one today, from 0 (unable to perform the activity) to 10 (able to perform the activity at the same level as before the injury or problem).",
                "type": "display"
            })];
            for n in 1..=5 {
                let activity = format!("activity-{n}");
                list.push(json!({
                    "linkId": activity,
                    "text": format!("Activity {n}"),
                    "type": "string",
                    "required": n <= 3,
                    "maxLength": 200
                }));
                list.push(json!({
                    "linkId": format!("rating-{n}"),
                    "text": format!("How able are you to do activity {n} today? (0 = unable to perform it, 10 = able to perform it at the same level as before)"),
                    "type": "integer",
                    "enableWhen": [{"question": activity, "operator": "exists", "answerBoolean": true}],
                    "required": true,
                    "answerOption": rating_options()
                }));
            }
            list
        }
        "lefs" => {
            let options = coding_options("lefs-difficulty", LEFS_ANSWERS);
            let activities: Vec<Value> = LEFS_ITEMS
                .iter()
                .zip(LEFS_TEXTS)
                .map(|(link, text)| {
                    json!({"linkId": link, "text": text, "type": "choice", "required": true,
                           "answerOption": options})
                })
                .collect();
            vec![
                json!({
                    "linkId": "instructions",
                    "text": "We are interested in knowing whether you are having any difficulty at all with the activities listed below because of your lower limb problem for which you are currently seeking attention. Please provide an answer for each activity.",
                    "type": "display"
                }),
                json!({
                    "linkId": "activities",
                    "text": "Today, do you or would you have any difficulty at all with:",
                    "type": "group",
                    "required": true,
                    "item": activities
                }),
            ]
        }
        "groc" => vec![json!({
            "linkId": "change",
            "text": "With respect to the problem you are being treated for, how would you describe yourself now compared with when your treatment started?",
            "type": "choice",
            "required": true,
            "answerOption": coding_options("global-rating-of-change", GROC_ANSWERS)
        })],
        _ => Vec::new(),
    }
}

fn direction_words(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsBetter => "higher is better",
        Direction::LowerIsBetter => "lower is better",
    }
}

fn description(i: &Instrument) -> String {
    let r = &i.rule;
    let scoring = match (i.id, r.scoring) {
        ("groc", _) => "the rating itself, the change the patient reports".to_string(),
        (_, Scoring::Item(_)) => "the rating".to_string(),
        (_, Scoring::Sum(items)) => format!("the sum of the {} items", items.len()),
        (_, Scoring::Mean { min_answered, .. }) => format!(
            "the mean of the activities rated (at least {min_answered}), to {} decimal",
            r.decimals
        ),
    };
    let mcid = match r.mcid_on {
        McidOn::Change => format!(
            "a change from the first score of at least {} points in the better direction",
            r.mcid
        ),
        McidOn::Value => format!(
            "a rating of +{m} or more (and worse at -{m} or less)",
            m = r.mcid
        ),
    };
    let max = if r.min < 0.0 {
        format!("+{}", r.max)
    } else {
        r.max.to_string()
    };
    format!(
        "{title}. Score: {scoring}; range {min} to {max}; {direction}. Minimal clinically important difference: {mcid}. Sources: {source}",
        title = i.title,
        min = r.min,
        direction = direction_words(r.direction),
        source = i.source
    )
}

/// The instrument as a Questionnaire.
pub fn questionnaire(i: &Instrument) -> Value {
    let items = items(i);
    let mut q = json!({
        "resourceType": "Questionnaire",
        "id": i.id,
        "meta": {"tag": [starter_tag()]},
        "url": url(i.id),
        "version": VERSION,
        "name": pascal(i.title),
        "title": i.title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "HEP FHIR backend",
        "description": description(i),
        "copyright": i.licence,
        "code": [{"system": i.code.0, "code": i.code.1, "display": i.code.2}]
    });
    if !items.is_empty() {
        q["item"] = Value::Array(items);
    }
    q
}

/// Every starter Questionnaire as (type, id, json), like library::all().
pub fn all() -> Vec<(&'static str, &'static str, Value)> {
    INSTRUMENTS
        .iter()
        .map(|i| ("Questionnaire", i.id, questionnaire(i)))
        .collect()
}

// ---------------------------------------------------------------------------------
// Checking a response

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// The `value[x]` (or `answer[x]`) of an element: its type's name (`Integer`, `Coding`)
/// and value.
fn typed<'a>(m: &'a Map<String, Value>, prefix: &str) -> Option<(&'a str, &'a Value)> {
    m.iter().find_map(|(k, v)| {
        let suffix = k.strip_prefix(prefix)?;
        suffix
            .starts_with(|c: char| c.is_ascii_uppercase())
            .then_some((suffix, v))
    })
}

/// The FHIRPath name of a type (`integer`, `dateTime`, `Coding`).
fn fhir_type(suffix: &str) -> String {
    const PRIMITIVES: &[&str] = &[
        "Boolean", "Decimal", "Integer", "Date", "DateTime", "Time", "String", "Uri",
    ];
    if PRIMITIVES.contains(&suffix) {
        let mut c = suffix.chars();
        c.next()
            .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
            .unwrap_or_default()
    } else {
        suffix.to_string()
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn same_coding(a: &Value, b: &Value) -> bool {
    let code = |v: &Value| v.get("code").and_then(Value::as_str).map(str::to_string);
    let system = |v: &Value| v.get("system").and_then(Value::as_str).map(str::to_string);
    code(a).is_some() && code(a) == code(b) && (system(b).is_none() || system(a) == system(b))
}

/// Compares an answer's value with a value of the same kind (`=` is `Some(Equal)`);
/// `None` when they are not comparable.
fn compare(a: (&str, &Value), b: (&str, &Value)) -> Option<Ordering> {
    let numeric = |t: &str| t == "Integer" || t == "Decimal";
    let textual = |t: &str| matches!(t, "Date" | "DateTime" | "Time" | "String" | "Uri");
    match (a.0, b.0) {
        (x, y) if numeric(x) && numeric(y) => number(a.1)?.partial_cmp(&number(b.1)?),
        (x, y) if textual(x) && x == y => Some(a.1.as_str()?.cmp(b.1.as_str()?)),
        ("Boolean", "Boolean") => (a.1 == b.1).then_some(Ordering::Equal),
        ("Coding", "Coding") => same_coding(a.1, b.1).then_some(Ordering::Equal),
        ("Reference", "Reference") => {
            let r = |v: &Value| {
                v.get("reference")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            (r(a.1).is_some() && r(a.1) == r(b.1)).then_some(Ordering::Equal)
        }
        ("Quantity", "Quantity") => {
            let unit = |v: &Value| {
                v.get("code")
                    .or_else(|| v.get("unit"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            if unit(a.1) != unit(b.1) {
                return None;
            }
            number(a.1.get("value")?)?.partial_cmp(&number(b.1.get("value")?)?)
        }
        _ => None,
    }
}

/// The value types an item's answers may have.
fn answer_types(item: &Map<String, Value>) -> Vec<&str> {
    let options: Vec<&str> = array(item.get("answerOption"))
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|o| typed(o, "value").map(|(t, _)| t))
        .collect();
    match text(item, "type").unwrap_or_default() {
        "boolean" => vec!["Boolean"],
        "decimal" => vec!["Decimal"],
        "integer" => vec!["Integer"],
        "date" => vec!["Date"],
        "dateTime" => vec!["DateTime"],
        "time" => vec!["Time"],
        "string" | "text" => vec!["String"],
        "url" => vec!["Uri"],
        "attachment" => vec!["Attachment"],
        "reference" => vec!["Reference"],
        "quantity" => vec!["Quantity"],
        "choice" if options.is_empty() => vec!["Coding"],
        "choice" => options,
        "open-choice" => {
            let mut types = if options.is_empty() {
                vec!["Coding"]
            } else {
                options
            };
            types.push("String");
            types
        }
        _ => Vec::new(),
    }
}

fn expected_words(types: &[&str]) -> String {
    let names: Vec<String> = types.iter().map(|t| format!("value{t}")).collect();
    match names.as_slice() {
        [] => "no answer".to_string(),
        [one] => one.clone(),
        _ => format!("one of {}", names.join(", ")),
    }
}

struct Checker<'a> {
    /// Every answer of the response, by linkId.
    answers: HashMap<&'a str, Vec<&'a Map<String, Value>>>,
    /// Required items must be answered (a completed or amended response).
    complete: bool,
    issues: Vec<Issue>,
}

fn collect_answers<'a>(
    items: &'a [Value],
    out: &mut HashMap<&'a str, Vec<&'a Map<String, Value>>>,
) {
    for item in items.iter().filter_map(Value::as_object) {
        let answers: Vec<&Map<String, Value>> = array(item.get("answer"))
            .iter()
            .filter_map(Value::as_object)
            .collect();
        if let Some(link) = text(item, "linkId") {
            out.entry(link)
                .or_default()
                .extend(answers.iter().filter(|a| typed(a, "value").is_some()));
        }
        for a in &answers {
            collect_answers(array(a.get("item")), out);
        }
        collect_answers(array(item.get("item")), out);
    }
}

fn find<'q>(items: &'q [Value], link: &str) -> Option<&'q Map<String, Value>> {
    items
        .iter()
        .filter_map(Value::as_object)
        .find(|q| text(q, "linkId") == Some(link))
}

fn label(q: &Map<String, Value>) -> String {
    let link = text(q, "linkId").unwrap_or_default();
    match text(q, "text") {
        Some(t) => format!("{link} ({t})"),
        None => link.to_string(),
    }
}

impl<'a> Checker<'a> {
    fn issue(&mut self, code: IssueType, message: String, at: String) {
        self.issues.push(Issue::error(code, message).at(at));
    }

    /// One `enableWhen` condition.
    fn condition(&self, c: &Map<String, Value>) -> bool {
        let answers: &[&Map<String, Value>] = text(c, "question")
            .and_then(|q| self.answers.get(q))
            .map_or(&[], Vec::as_slice);
        let expected = typed(c, "answer");
        let values = || answers.iter().filter_map(|a| typed(a, "value"));
        let operator = text(c, "operator").unwrap_or_default();
        if operator == "exists" {
            let wanted = expected.and_then(|(_, v)| v.as_bool()).unwrap_or(true);
            return values().next().is_some() == wanted;
        }
        let Some(expected) = expected else {
            return false;
        };
        let test = |o: Ordering| match operator {
            "=" => o == Ordering::Equal,
            "!=" => o == Ordering::Equal,
            ">" => o == Ordering::Greater,
            "<" => o == Ordering::Less,
            ">=" => o != Ordering::Less,
            "<=" => o != Ordering::Greater,
            _ => false,
        };
        let any = values().any(|v| compare(v, expected).is_some_and(test));
        // `!=`: no answer is equal to the value (true when unanswered)
        if operator == "!=" { !any } else { any }
    }

    /// Whether an item is enabled by its own `enableWhen` (its parents aside).
    fn enabled(&self, q: &Map<String, Value>) -> bool {
        let conditions: Vec<bool> = array(q.get("enableWhen"))
            .iter()
            .filter_map(Value::as_object)
            .map(|c| self.condition(c))
            .collect();
        if conditions.is_empty() {
            return true;
        }
        if text(q, "enableBehavior") == Some("any") {
            conditions.iter().any(|c| *c)
        } else {
            conditions.iter().all(|c| *c)
        }
    }

    /// The response items `responses` (under `parent`) against the Questionnaire items
    /// `questions` of the same level.
    fn level(
        &mut self,
        questions: &[Value],
        responses: &'a [Value],
        parent: &str,
        parent_enabled: bool,
    ) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, r) in responses.iter().enumerate() {
            let at = format!("{parent}.item[{i}]");
            let Some(r) = r.as_object() else { continue };
            let Some(link) = text(r, "linkId") else {
                self.issue(
                    IssueType::Required,
                    "an item names its question (linkId)".into(),
                    format!("{at}.linkId"),
                );
                continue;
            };
            let Some(q) = find(questions, link) else {
                self.issue(
                    IssueType::Structure,
                    format!("the Questionnaire has no item {link} here"),
                    format!("{at}.linkId"),
                );
                continue;
            };
            let kind = text(q, "type").unwrap_or_default();
            let repeats = q.get("repeats").and_then(Value::as_bool) == Some(true);
            let count = seen.entry(link).or_default();
            *count += 1;
            if *count > 1 && !(kind == "group" && repeats) {
                self.issue(
                    IssueType::Structure,
                    format!("item {link} appears more than once (its answers go in one item)"),
                    at.clone(),
                );
            }
            let enabled = parent_enabled && self.enabled(q);
            let answers = array(r.get("answer"));
            let children = array(q.get("item"));
            if kind == "group" || kind == "display" {
                if !answers.is_empty() {
                    self.issue(
                        IssueType::Structure,
                        format!("{link} is a {kind} item: it has no answer"),
                        format!("{at}.answer"),
                    );
                }
            } else {
                if !enabled && !answers.is_empty() {
                    self.issue(
                        IssueType::Structure,
                        format!("{link} is not enabled (enableWhen): it has no answer"),
                        format!("{at}.answer"),
                    );
                }
                if !repeats && answers.len() > 1 {
                    self.issue(
                        IssueType::Structure,
                        format!("{link} does not repeat: one answer at most"),
                        format!("{at}.answer[1]"),
                    );
                }
                for (j, a) in answers.iter().enumerate() {
                    let a_at = format!("{at}.answer[{j}]");
                    if let Some(a) = a.as_object() {
                        self.answer(q, a, &a_at);
                        self.level(children, array(a.get("item")), &a_at, enabled);
                    }
                }
            }
            let nested = array(r.get("item"));
            if !nested.is_empty() || kind == "group" {
                self.level(children, nested, &at, enabled);
            }
        }
        if self.complete {
            self.required(questions, responses, parent, parent_enabled);
        }
    }

    /// The required, enabled items of one level that have no answer.
    fn required(&mut self, questions: &[Value], responses: &[Value], parent: &str, on: bool) {
        for q in questions.iter().filter_map(Value::as_object) {
            if q.get("required").and_then(Value::as_bool) != Some(true) || !(on && self.enabled(q))
            {
                continue;
            }
            let link = text(q, "linkId").unwrap_or_default();
            let present: Vec<(usize, &Map<String, Value>)> = responses
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_object().map(|r| (i, r)))
                .filter(|(_, r)| text(r, "linkId") == Some(link))
                .collect();
            let group = text(q, "type") == Some("group");
            match present.first() {
                None => self.issue(
                    IssueType::Required,
                    format!(
                        "required {} {} is missing",
                        if group { "group" } else { "item" },
                        label(q)
                    ),
                    format!("{parent}.item"),
                ),
                Some((i, _))
                    if !group
                        && present
                            .iter()
                            .all(|(_, r)| array(r.get("answer")).is_empty()) =>
                {
                    self.issue(
                        IssueType::Required,
                        format!("required item {} has no answer", label(q)),
                        format!("{parent}.item[{i}].answer"),
                    );
                }
                Some(_) => {}
            }
        }
    }

    /// One answer of a question item.
    fn answer(&mut self, q: &Map<String, Value>, a: &Map<String, Value>, at: &str) {
        let link = text(q, "linkId").unwrap_or_default();
        let Some((suffix, value)) = typed(a, "value") else {
            if array(a.get("item")).is_empty() {
                self.issue(
                    IssueType::Required,
                    format!("an answer to {link} has a value"),
                    at.to_string(),
                );
            }
            return;
        };
        let value_at = format!("{at}.value.ofType({})", fhir_type(suffix));
        let allowed = answer_types(q);
        if !allowed.contains(&suffix) {
            self.issue(
                IssueType::Value,
                format!(
                    "{link} is a {} item: its answer is {}, not value{suffix}",
                    text(q, "type").unwrap_or("question"),
                    expected_words(&allowed)
                ),
                value_at,
            );
            return;
        }
        let options = array(q.get("answerOption"));
        let open = text(q, "type") == Some("open-choice") && suffix == "String";
        if !options.is_empty() && !open {
            let listed = options
                .iter()
                .filter_map(Value::as_object)
                .filter_map(|o| typed(o, "value"))
                .any(|o| o.0 == suffix && compare((suffix, value), o) == Some(Ordering::Equal));
            if !listed {
                self.issue(
                    IssueType::Value,
                    format!("the answer to {link} is not one of its answer options"),
                    value_at.clone(),
                );
            }
        }
        if suffix == "String"
            && let Some(max) = q.get("maxLength").and_then(Value::as_u64)
            && value.as_str().map_or(0, |s| s.chars().count() as u64) > max
        {
            self.issue(
                IssueType::Value,
                format!("the answer to {link} is longer than {max} characters"),
                value_at,
            );
        }
    }
}

/// Whether a canonical (`url` or `url|version`) names the Questionnaire.
fn names_questionnaire(canonical: &str, questionnaire: &Map<String, Value>) -> bool {
    let (base, version) = match canonical.split_once('|') {
        Some((b, v)) => (b, Some(v)),
        None => (canonical, None),
    };
    let by_url = text(questionnaire, "url") == Some(base);
    let by_id = text(questionnaire, "id").is_some_and(|id| base == format!("Questionnaire/{id}"));
    (by_url || by_id) && version.is_none_or(|v| text(questionnaire, "version") == Some(v))
}

/// Checks a QuestionnaireResponse against its Questionnaire (generic, any Questionnaire):
/// every problem at once, each Issue `.at(...)` a FHIRPath like
/// `QuestionnaireResponse.item[2].answer[0].value.ofType(integer)` or
/// `QuestionnaireResponse.item` for a missing required item.
///
/// Rules: each linkId is an item of the Questionnaire at that place (groups' items
/// nested in the group, a question's items in its answers); the required items that are
/// enabled are answered when the status is `completed` or `amended` (not while
/// `in-progress`); an answer's type is the item's (integer: valueInteger, decimal:
/// valueDecimal, string and text: valueString, boolean: valueBoolean, choice:
/// valueCoding or the type of its answerOptions, date, dateTime, time, url: valueUri,
/// quantity, reference, attachment); with answerOptions, an answer is one of them (a
/// coding: same system and code); an item that does not repeat has one answer at most;
/// an item that is not enabled (`enableWhen` with `exists`, `=`, `!=`, `>`, `<`, `>=`,
/// `<=`; `enableBehavior` all or any; an item inside a disabled one is disabled) has no
/// answer; group and display items have no answer; a string is at most `maxLength`
/// characters; `questionnaire` names this Questionnaire (its url, with its version when
/// one is given). `!=` holds when no answer equals the value (also when unanswered).
pub fn check_response(
    questionnaire: &Map<String, Value>,
    response: &Map<String, Value>,
) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    match text(response, "questionnaire") {
        None => issues.push(
            Issue::error(
                IssueType::Required,
                "the response names the Questionnaire it answers (questionnaire)",
            )
            .at("QuestionnaireResponse.questionnaire"),
        ),
        Some(c) if !names_questionnaire(c, questionnaire) => issues.push(
            Issue::error(
                IssueType::Value,
                format!(
                    "the response answers {c}, not {}|{}",
                    text(questionnaire, "url").unwrap_or("this Questionnaire"),
                    text(questionnaire, "version").unwrap_or("-")
                ),
            )
            .at("QuestionnaireResponse.questionnaire"),
        ),
        Some(_) => {}
    }
    let items = array(response.get("item"));
    let mut answers = HashMap::new();
    collect_answers(items, &mut answers);
    let mut checker = Checker {
        answers,
        complete: matches!(text(response, "status"), Some("completed" | "amended")),
        issues,
    };
    checker.level(
        array(questionnaire.get("item")),
        items,
        "QuestionnaireResponse",
        true,
    );
    if checker.issues.is_empty() {
        Ok(())
    } else {
        Err(checker.issues)
    }
}

// ---------------------------------------------------------------------------------
// Scoring

/// Every answer with a value: (linkId, location of the answer, the answer).
fn each_answer<'a, F>(items: &'a [Value], parent: &str, f: &mut F)
where
    F: FnMut(&'a str, &str, &'a Map<String, Value>),
{
    for (i, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            continue;
        };
        let at = format!("{parent}.item[{i}]");
        for (j, a) in array(item.get("answer")).iter().enumerate() {
            let Some(a) = a.as_object() else { continue };
            let a_at = format!("{at}.answer[{j}]");
            if let Some(link) = text(item, "linkId") {
                f(link, &a_at, a);
            }
            each_answer(array(a.get("item")), &a_at, f);
        }
        each_answer(array(item.get("item")), &at, f);
    }
}

/// The number an answer stands for: an integer or decimal, or a coding's `ordinalValue`
/// extension, else its code read as a number.
fn numeric(a: &Map<String, Value>) -> Option<f64> {
    match typed(a, "value")? {
        ("Integer" | "Decimal", v) => number(v),
        ("Coding", c) => array(c.get("extension"))
            .iter()
            .filter_map(Value::as_object)
            .find(|e| text(e, "url") == Some(ORDINAL_VALUE))
            .and_then(|e| typed(e, "value"))
            .and_then(|(_, v)| number(v))
            .or_else(|| {
                c.get("code")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|x| x.is_finite())
            }),
        _ => None,
    }
}

/// The numeric answers of a response by linkId (integer, decimal, coding's code parsed as number
/// or answerOption's `ordinalValue` extension / the coding code), for Rule::score.
/// The first numeric answer of an item counts, items nested in groups and answers
/// included.
pub fn numeric_answers(response: &Map<String, Value>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    each_answer(
        array(response.get("item")),
        "QuestionnaireResponse",
        &mut |link, _, a| {
            if !out.contains_key(link)
                && let Some(v) = numeric(a)
            {
                out.insert(link.to_string(), v);
            }
        },
    );
    out
}

/// Where the answer of an item is (its value), for an issue.
fn locate(response: &Map<String, Value>, link: &str) -> String {
    let mut found = None;
    each_answer(
        array(response.get("item")),
        "QuestionnaireResponse",
        &mut |l, at, a| {
            if found.is_none()
                && l == link
                && numeric(a).is_some()
                && let Some((t, _)) = typed(a, "value")
            {
                found = Some(format!("{at}.value.ofType({})", fhir_type(t)));
            }
        },
    );
    found.unwrap_or_else(|| "QuestionnaireResponse.item".to_string())
}

/// Scores a (checked) response: Err(Vec<Issue>) with a location when the rule cannot score it.
/// The response must answer this instrument and be `completed` or `amended`.
pub fn score(instrument: &Instrument, response: &Map<String, Value>) -> Result<f64, Vec<Issue>> {
    let mut issues = Vec::new();
    let answers_it = text(response, "questionnaire")
        .and_then(self::instrument)
        .is_some_and(|i| i.id == instrument.id);
    if !answers_it {
        issues.push(
            Issue::error(
                IssueType::Value,
                format!(
                    "the response does not answer {}|{VERSION}",
                    url(instrument.id)
                ),
            )
            .at("QuestionnaireResponse.questionnaire"),
        );
    }
    if !matches!(text(response, "status"), Some("completed" | "amended")) {
        issues.push(
            Issue::error(
                IssueType::BusinessRule,
                "only a completed (or amended) response is scored",
            )
            .at("QuestionnaireResponse.status"),
        );
    }
    match instrument.rule.score(&numeric_answers(response)) {
        Ok(s) if issues.is_empty() => return Ok(s),
        Ok(_) => {}
        Err(e) => {
            let (code, at) = match &e {
                ScoreError::Missing { .. } | ScoreError::TooFew { .. } => (
                    IssueType::Required,
                    "QuestionnaireResponse.item".to_string(),
                ),
                ScoreError::OutOfRange { item: Some(i), .. } => {
                    (IssueType::Value, locate(response, i))
                }
                ScoreError::OutOfRange { item: None, .. } => {
                    (IssueType::Value, "QuestionnaireResponse.item".to_string())
                }
            };
            issues.push(Issue::error(code, format!("{}: {e}", instrument.title)).at(at));
        }
    }
    Err(issues)
}

// ---------------------------------------------------------------------------------
// The score Observation

/// What the Observation of one score states.
pub struct ScoreObservation<'a> {
    /// The instrument answered.
    pub instrument: &'a Instrument,
    /// The id of the QuestionnaireResponse scored.
    pub response_id: &'a str,
    /// `Patient/...`
    pub patient: &'a str,
    /// `CarePlan/...` of the program that assigned the measure.
    pub plan: Option<&'a str>,
    /// FHIR dateTime of the answers.
    pub effective: &'a str,
    /// The score.
    pub score: f64,
    /// The first score of the measure; `None` for the first itself.
    pub baseline: Option<f64>,
    /// Whether the MCID is reached.
    pub mcid_reached: bool,
    /// Whether the score is worse by at least the MCID.
    pub worsened: bool,
}

/// A JSON number of an f64 (no negative zero).
fn num(x: f64) -> Value {
    json!(if x == 0.0 { 0.0 } else { x })
}

fn csv_number(x: f64) -> String {
    (if x == 0.0 { 0.0 } else { x }).to_string()
}

fn whole(i: &Instrument) -> bool {
    i.rule.decimals == 0
}

/// `valueInteger` or `valueQuantity` of a score or a change.
fn score_value(i: &Instrument, x: f64) -> (&'static str, Value) {
    if whole(i) {
        ("valueInteger", json!(x.round() as i64))
    } else {
        let unit = i.unit.unwrap_or("{score}");
        (
            "valueQuantity",
            json!({"value": num(x), "unit": unit, "system": UCUM, "code": unit}),
        )
    }
}

fn measure_concept(code: &str) -> Value {
    let display = CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, d)| d);
    json!({"coding": [{"system": SYSTEM, "code": code, "display": display}]})
}

/// Canonical URL of the profile of score Observations.
pub fn profile_url() -> String {
    canonical("StructureDefinition", "hep-outcome-score")
}

/// The Observation of one score: status final, category `survey` (observation-category),
/// code, valueQuantity (value, unit, UCUM system) or valueInteger for whole-number scales,
/// subject, effectiveDateTime, derivedFrom QuestionnaireResponse/id, basedOn CarePlan,
/// component "change from baseline" (project code system `outcome-measure`, code `change-from-baseline`),
/// interpretation: an `mcid-reached` coding of the project system when reached (and `worsened` when worse by MCID),
/// meta.profile canonical("StructureDefinition", "hep-outcome-score"), a narrative is NOT required.
/// No id yet. The change component is left out without a baseline and for a
/// transition scale (its value is the change).
pub fn score_observation(o: &ScoreObservation<'_>) -> Value {
    let i = o.instrument;
    let mut obs = Map::new();
    obs.insert("resourceType".into(), json!("Observation"));
    obs.insert("meta".into(), json!({"profile": [profile_url()]}));
    if let Some(plan) = o.plan {
        obs.insert("basedOn".into(), json!([{"reference": plan}]));
    }
    obs.insert("status".into(), json!("final"));
    obs.insert(
        "category".into(),
        json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}]),
    );
    obs.insert(
        "code".into(),
        json!({"coding": [{"system": i.code.0, "code": i.code.1, "display": i.code.2}], "text": i.title}),
    );
    obs.insert("subject".into(), json!({"reference": o.patient}));
    obs.insert("effectiveDateTime".into(), json!(o.effective));
    let (key, value) = score_value(i, o.score);
    obs.insert(key.into(), value);
    let mut interpretation = Vec::new();
    if o.mcid_reached {
        interpretation.push(measure_concept("mcid-reached"));
    }
    if o.worsened {
        interpretation.push(measure_concept("worsened"));
    }
    if !interpretation.is_empty() {
        obs.insert("interpretation".into(), Value::Array(interpretation));
    }
    obs.insert(
        "derivedFrom".into(),
        json!([{"reference": format!("QuestionnaireResponse/{}", o.response_id)}]),
    );
    if let Some(change) = i.rule.change(o.baseline, o.score) {
        let (key, value) = score_value(i, change);
        let mut component = Map::new();
        component.insert("code".into(), measure_concept("change-from-baseline"));
        component.insert(key.into(), value);
        obs.insert("component".into(), json!([component]));
    }
    Value::Object(obs)
}

// ---------------------------------------------------------------------------------
// $outcomes

/// The series of one measure of a program or patient.
pub struct MeasureSeries<'a> {
    /// The instrument.
    pub instrument: &'a Instrument,
    /// Its scores, sorted, the first the baseline ([`domain::outcome::series`]).
    pub points: Vec<Point>,
    /// each point's Observation id
    pub observations: Vec<String>,
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn questionnaire_canonical(i: &Instrument) -> String {
    format!("{}|{VERSION}", url(i.id))
}

/// Parameters: one `measure` parameter per instrument with parts: `questionnaire` (valueCanonical),
/// `title` (valueString), `direction` (valueCode higher-is-better/lower-is-better), `mcid` (valueDecimal),
/// `baseline` (valueDecimal), `latest`, `change` (valueDecimal), `mcidReached` (valueBoolean), and one
/// `score` part per point with parts `date` (valueDateTime), `value` (valueDecimal), `change`, `mcidReached`, `observation` (valueReference).
///
/// A first `subject` parameter names the program or patient. `baseline`, `latest`,
/// `change`, `mcidReached` and `worsened` are those of the latest score, present when
/// there are scores (`baseline` and `change` not for a transition scale); each score
/// also has `worsened`. Dates are in `tz`.
pub fn outcomes_parameters(subject: &str, series: &[MeasureSeries<'_>], tz: &TimeZone) -> Value {
    let mut params = vec![json!({"name": "subject", "valueReference": {"reference": subject}})];
    for s in series {
        let i = s.instrument;
        let mut parts = vec![
            json!({"name": "questionnaire", "valueCanonical": questionnaire_canonical(i)}),
            json!({"name": "title", "valueString": i.title}),
            json!({"name": "direction", "valueCode": i.rule.direction.code()}),
            json!({"name": "mcid", "valueDecimal": num(i.rule.mcid)}),
        ];
        if let (Some(first), Some(latest)) = (s.points.first(), s.points.last()) {
            if i.rule.mcid_on == McidOn::Change {
                parts.push(json!({"name": "baseline", "valueDecimal": num(first.score)}));
            }
            parts.push(json!({"name": "latest", "valueDecimal": num(latest.score)}));
            if let Some(c) = latest.change {
                parts.push(json!({"name": "change", "valueDecimal": num(c)}));
            }
            parts.push(json!({"name": "mcidReached", "valueBoolean": latest.mcid_reached}));
            parts.push(json!({"name": "worsened", "valueBoolean": latest.worsened}));
        }
        for (n, p) in s.points.iter().enumerate() {
            let mut score = vec![
                json!({"name": "date", "valueDateTime": local(p.at, tz)}),
                json!({"name": "value", "valueDecimal": num(p.score)}),
            ];
            if let Some(c) = p.change {
                score.push(json!({"name": "change", "valueDecimal": num(c)}));
            }
            score.push(json!({"name": "mcidReached", "valueBoolean": p.mcid_reached}));
            score.push(json!({"name": "worsened", "valueBoolean": p.worsened}));
            if let Some(id) = s.observations.get(n) {
                score.push(json!({"name": "observation", "valueReference": {"reference": format!("Observation/{id}")}}));
            }
            parts.push(json!({"name": "score", "part": score}));
        }
        params.push(json!({"name": "measure", "part": parts}));
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

/// CSV (header + one line per score): questionnaire,title,date,score,change_from_baseline,mcid_reached,observation
/// Dates in `tz`; the observation as `Observation/id`.
pub fn outcomes_csv(series: &[MeasureSeries<'_>], tz: &TimeZone) -> String {
    let mut out = String::from(
        "questionnaire,title,date,score,change_from_baseline,mcid_reached,observation\n",
    );
    for s in series {
        for (n, p) in s.points.iter().enumerate() {
            let fields = [
                csv_field(&questionnaire_canonical(s.instrument)),
                csv_field(s.instrument.title),
                local(p.at, tz),
                csv_number(p.score),
                p.change.map(csv_number).unwrap_or_default(),
                p.mcid_reached.to_string(),
                s.observations
                    .get(n)
                    .map(|id| csv_field(&format!("Observation/{id}")))
                    .unwrap_or_default(),
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

    fn by_id(id: &str) -> &'static Instrument {
        INSTRUMENTS.iter().find(|i| i.id == id).expect("instrument")
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn q(id: &str) -> Map<String, Value> {
        object(questionnaire(by_id(id)))
    }

    fn valid_r4(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        if let Err(e) = parse_resource(&bytes, Format::Json, &ParseLimits::default()) {
            panic!(
                "{}: {e:?}",
                serde_json::to_string_pretty(v).unwrap_or_default()
            );
        }
    }

    fn response(id: &str, items: Value) -> Map<String, Value> {
        object(json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": format!("{}|{VERSION}", url(id)),
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "authored": "2026-03-02T10:00:00+01:00",
            "item": items
        }))
    }

    fn int(link: &str, v: i64) -> Value {
        json!({"linkId": link, "answer": [{"valueInteger": v}]})
    }

    fn string(link: &str, v: &str) -> Value {
        json!({"linkId": link, "answer": [{"valueString": v}]})
    }

    fn lefs_item(n: usize, code: &str) -> Value {
        json!({"linkId": format!("lefs-{n}"), "answer": [{"valueCoding": {
            "system": canonical("CodeSystem", "lefs-difficulty"), "code": code}}]})
    }

    fn lefs_response(code: &str) -> Map<String, Value> {
        let items: Vec<Value> = (1..=20).map(|n| lefs_item(n, code)).collect();
        response("lefs", json!([{"linkId": "activities", "item": items}]))
    }

    fn groc_response(code: &str) -> Map<String, Value> {
        response(
            "groc",
            json!([{"linkId": "change", "answer": [{"valueCoding": {
                "system": canonical("CodeSystem", "global-rating-of-change"), "code": code}}]}]),
        )
    }

    fn psfs_response() -> Map<String, Value> {
        response(
            "psfs",
            json!([
                string("activity-1", "Climbing stairs"),
                int("rating-1", 7),
                string("activity-2", "Gardening"),
                int("rating-2", 8),
                string("activity-3", "Walking the dog"),
                int("rating-3", 8)
            ]),
        )
    }

    /// A case of a refused response: its name, the Questionnaire, the response, the
    /// expressions of the issues.
    type Case<'a> = (
        &'a str,
        Map<String, Value>,
        Map<String, Value>,
        Vec<&'a str>,
    );

    /// The expressions of the issues of a refused response.
    fn refused(q: &Map<String, Value>, r: &Map<String, Value>) -> Vec<String> {
        match check_response(q, r) {
            Ok(()) => Vec::new(),
            Err(issues) => issues
                .into_iter()
                .map(|i| i.expression.unwrap_or_default())
                .collect(),
        }
    }

    #[test]
    fn measures_questionnaires_observations_and_parameters_are_valid_r4() {
        let all = all();
        assert_eq!(all.len(), 4);
        for (kind, id, json) in &all {
            assert_eq!(*kind, "Questionnaire");
            assert_eq!(json["id"], *id);
            assert_eq!(json["url"], url(id));
            assert_eq!(json["version"], VERSION);
            assert_eq!(json["status"], "active");
            assert_eq!(json["subjectType"][0], "Patient");
            assert_eq!(json["meta"]["tag"][0], starter_tag());
            assert!(json["copyright"].as_str().is_some_and(|c| !c.is_empty()));
            let description = json["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("Minimal clinically important difference"),
                "{id}"
            );
            valid_r4(json);
        }
        for i in INSTRUMENTS {
            let obs = score_observation(&ScoreObservation {
                instrument: i,
                response_id: "r1",
                patient: "Patient/p1",
                plan: Some("CarePlan/c1"),
                effective: "2026-03-02T10:00:00+01:00",
                score: 7.7,
                baseline: Some(4.0),
                mcid_reached: true,
                worsened: false,
            });
            valid_r4(&obs);
            let first = score_observation(&ScoreObservation {
                instrument: i,
                response_id: "r0",
                patient: "Patient/p1",
                plan: None,
                effective: "2026-03-02",
                score: 0.0,
                baseline: None,
                mcid_reached: false,
                worsened: false,
            });
            valid_r4(&first);
        }
        let at = |s: &str| s.parse::<Timestamp>().expect("ts");
        let psfs = by_id("psfs");
        let points = domain::outcome::series(
            &psfs.rule,
            &[
                (at("2026-03-02T09:00:00Z"), 4.3),
                (at("2026-03-30T09:00:00Z"), 6.3),
            ],
        );
        let series = [
            MeasureSeries {
                instrument: psfs,
                points,
                observations: vec!["o1".into(), "o2".into()],
            },
            MeasureSeries {
                instrument: by_id("lefs"),
                points: Vec::new(),
                observations: Vec::new(),
            },
        ];
        let p = outcomes_parameters("CarePlan/c1", &series, &TimeZone::UTC);
        valid_r4(&p);
    }

    #[test]
    fn measures_the_instruments_as_specified() {
        let nprs = q("nprs");
        assert_eq!(nprs["code"][0]["system"], "http://loinc.org");
        assert_eq!(nprs["code"][0]["code"], "72514-3");
        assert_eq!(nprs["item"][0]["type"], "integer");
        assert_eq!(
            nprs["item"][0]["answerOption"].as_array().map(Vec::len),
            Some(11)
        );
        let lefs = q("lefs");
        let activities = &lefs["item"][1]["item"];
        assert_eq!(activities.as_array().map(Vec::len), Some(20));
        assert_eq!(
            activities[0]["text"],
            "Any of your usual work, housework, or school activities."
        );
        assert_eq!(activities[19]["text"], "Rolling over in bed.");
        let options = &activities[0]["answerOption"];
        assert_eq!(options[0]["valueCoding"]["code"], "0");
        assert_eq!(
            options[0]["valueCoding"]["display"],
            "Extreme difficulty or unable to perform activity"
        );
        assert_eq!(options[4]["valueCoding"]["display"], "No difficulty");
        assert_eq!(lefs["code"][0]["system"], SYSTEM);
        let psfs = q("psfs");
        let rating4 = find(array(psfs.get("item")), "rating-4").expect("rating-4");
        assert_eq!(rating4["enableWhen"][0]["operator"], "exists");
        assert_eq!(rating4["enableWhen"][0]["question"], "activity-4");
        let activity4 = find(array(psfs.get("item")), "activity-4").expect("activity-4");
        assert_eq!(activity4["required"], false);
        let groc = q("groc");
        assert_eq!(
            groc["item"][0]["answerOption"].as_array().map(Vec::len),
            Some(15)
        );
        assert_eq!(by_id("groc").rule.mcid_on, McidOn::Value);
        assert_eq!(SYSTEM, canonical("CodeSystem", "outcome-measure"));
        for code in [
            "change-from-baseline",
            "mcid-reached",
            "worsened",
            "psfs",
            "lefs",
            "groc",
        ] {
            assert!(CODES.iter().any(|(c, _)| *c == code), "{code}");
        }
        // every code of the project system an instrument uses is in CODES
        for i in INSTRUMENTS.iter().filter(|i| i.code.0 == SYSTEM) {
            assert!(CODES.contains(&(i.code.1, i.code.2)), "{}", i.id);
        }
    }

    #[test]
    fn measures_a_canonical_names_its_instrument() {
        assert_eq!(instrument(&url("lefs")).map(|i| i.id), Some("lefs"));
        assert_eq!(
            instrument(&format!("{}|1.0.0", url("psfs"))).map(|i| i.id),
            Some("psfs")
        );
        assert!(instrument(&format!("{}|2.0.0", url("psfs"))).is_none());
        assert!(instrument("https://example.org/Questionnaire/nprs").is_none());
        assert!(instrument(&url("odi")).is_none());
    }

    #[test]
    fn measures_one_valid_response_per_instrument_and_its_score() {
        let nprs = response("nprs", json!([int("pain", 6)]));
        let cases = [
            ("nprs", nprs, 6.0),
            ("psfs", psfs_response(), 7.7),
            ("lefs", lefs_response("4"), 80.0),
            ("groc", groc_response("5"), 5.0),
        ];
        for (id, r, expected) in cases {
            assert_eq!(check_response(&q(id), &r), Ok(()), "{id}");
            valid_r4(&Value::Object(r.clone()));
            assert_eq!(score(by_id(id), &r), Ok(expected), "{id}");
        }
        assert_eq!(score(by_id("lefs"), &lefs_response("0")), Ok(0.0));
        assert_eq!(score(by_id("groc"), &groc_response("-7")), Ok(-7.0));
    }

    #[test]
    fn measures_numeric_answers_read_codes_and_ordinal_values() {
        let r = response(
            "x",
            json!([
                {"linkId": "g", "item": [
                    {"linkId": "a", "answer": [{"valueCoding": {"code": "3"}}]},
                    {"linkId": "b", "answer": [{"valueCoding": {"code": "mild",
                        "extension": [{"url": ORDINAL_VALUE, "valueDecimal": 1.5}]}}]}
                ]},
                {"linkId": "c", "answer": [{"valueDecimal": 2.25}, {"valueDecimal": 9}]},
                {"linkId": "d", "answer": [{"valueString": "4"}]},
                {"linkId": "e", "answer": [{"valueCoding": {"code": "none"}}]},
                {"linkId": "f", "answer": [{"valueBoolean": true,
                    "item": [{"linkId": "f1", "answer": [{"valueInteger": -2}]}]}]}
            ]),
        );
        let got = numeric_answers(&r);
        let expected: BTreeMap<String, f64> = [("a", 3.0), ("b", 1.5), ("c", 2.25), ("f1", -2.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn measures_scores_refused_with_a_location() {
        // one LEFS item unanswered (in progress: the check allows it, the score does not)
        let mut r = lefs_response("3");
        r["status"] = json!("in-progress");
        if let Some(items) = r["item"][0]["item"].as_array_mut() {
            items.remove(6);
        }
        assert_eq!(check_response(&q("lefs"), &r), Ok(()));
        let issues = score(by_id("lefs"), &r).expect_err("refused");
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            ["QuestionnaireResponse.status", "QuestionnaireResponse.item"]
        );
        assert!(
            issues[1].diagnostics.contains("lefs-7"),
            "{}",
            issues[1].diagnostics
        );
        // two PSFS activities rated, three needed
        let mut psfs = psfs_response();
        if let Some(items) = psfs["item"].as_array_mut() {
            items.truncate(4);
        }
        let issues = score(by_id("psfs"), &psfs).expect_err("refused");
        assert_eq!(issues[0].code, IssueType::Required);
        assert!(
            issues[0].diagnostics.contains("at least 3"),
            "{}",
            issues[0].diagnostics
        );
        // an out of range value is located at its answer
        let pain = response("nprs", json!([int("pain", 12)]));
        let issues = score(by_id("nprs"), &pain).expect_err("refused");
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("QuestionnaireResponse.item[0].answer[0].value.ofType(integer)")
        );
        // another measure's response
        let issues = score(by_id("lefs"), &psfs_response()).expect_err("refused");
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("QuestionnaireResponse.questionnaire")
        );
    }

    #[test]
    fn measures_each_rule_refused_with_its_expression() {
        let nprs = q("nprs");
        let cases: Vec<Case<'_>> = vec![
            (
                "unknown linkId",
                nprs.clone(),
                response("nprs", json!([int("pain", 3), int("mood", 3)])),
                vec!["QuestionnaireResponse.item[1].linkId"],
            ),
            (
                "required item missing",
                nprs.clone(),
                response("nprs", json!([{"linkId": "pain"}])),
                vec!["QuestionnaireResponse.item[0].answer"],
            ),
            (
                "required item absent",
                nprs.clone(),
                response("nprs", json!([])),
                vec!["QuestionnaireResponse.item"],
            ),
            (
                "wrong type",
                nprs.clone(),
                response("nprs", json!([string("pain", "3")])),
                vec!["QuestionnaireResponse.item[0].answer[0].value.ofType(string)"],
            ),
            (
                "not an option",
                nprs.clone(),
                response("nprs", json!([int("pain", 11)])),
                vec!["QuestionnaireResponse.item[0].answer[0].value.ofType(integer)"],
            ),
            (
                "does not repeat",
                nprs.clone(),
                response(
                    "nprs",
                    json!([{"linkId": "pain", "answer": [{"valueInteger": 3}, {"valueInteger": 4}]}]),
                ),
                vec!["QuestionnaireResponse.item[0].answer[1]"],
            ),
            (
                "twice the same item",
                nprs.clone(),
                response("nprs", json!([int("pain", 3), int("pain", 4)])),
                vec!["QuestionnaireResponse.item[1]"],
            ),
            (
                "another questionnaire",
                nprs.clone(),
                response("lefs", json!([int("pain", 3)])),
                vec!["QuestionnaireResponse.questionnaire"],
            ),
            (
                "another version",
                nprs.clone(),
                {
                    let mut r = response("nprs", json!([int("pain", 3)]));
                    r["questionnaire"] = json!(format!("{}|0.9.0", url("nprs")));
                    r
                },
                vec!["QuestionnaireResponse.questionnaire"],
            ),
            (
                "a coding of another system, and an unknown code",
                q("lefs"),
                {
                    let mut r = lefs_response("4");
                    r["item"][0]["item"][0]["answer"][0]["valueCoding"]["system"] =
                        json!("http://example.org/other");
                    r["item"][0]["item"][5]["answer"][0]["valueCoding"]["code"] = json!("5");
                    r
                },
                vec![
                    "QuestionnaireResponse.item[0].item[0].answer[0].value.ofType(Coding)",
                    "QuestionnaireResponse.item[0].item[5].answer[0].value.ofType(Coding)",
                ],
            ),
            (
                "an answer on a group and a display item, an item outside its group",
                q("lefs"),
                {
                    let mut r = lefs_response("4");
                    r["item"][0]["answer"] = json!([{"valueInteger": 1}]);
                    if let Some(items) = r["item"].as_array_mut() {
                        items.insert(0, int("instructions", 1));
                        items.push(lefs_item(3, "4"));
                    }
                    r
                },
                vec![
                    "QuestionnaireResponse.item[0].answer",
                    "QuestionnaireResponse.item[1].answer",
                    "QuestionnaireResponse.item[2].linkId",
                ],
            ),
            (
                "required group missing",
                q("lefs"),
                response("lefs", json!([])),
                vec!["QuestionnaireResponse.item"],
            ),
            (
                "required items of a group missing",
                q("lefs"),
                {
                    let mut r = lefs_response("4");
                    if let Some(items) = r["item"][0]["item"].as_array_mut() {
                        items.truncate(18);
                    }
                    r
                },
                vec![
                    "QuestionnaireResponse.item[0].item",
                    "QuestionnaireResponse.item[0].item",
                ],
            ),
            (
                "too long",
                q("psfs"),
                {
                    let mut r = psfs_response();
                    r["item"][2]["answer"][0]["valueString"] = json!("x".repeat(201));
                    r
                },
                vec!["QuestionnaireResponse.item[2].answer[0].value.ofType(string)"],
            ),
        ];
        for (name, questionnaire, r, expected) in cases {
            assert_eq!(refused(&questionnaire, &r), expected, "{name}");
        }
        // in progress: required items may wait
        let mut waiting = response("nprs", json!([]));
        waiting["status"] = json!("in-progress");
        assert_eq!(check_response(&nprs, &waiting), Ok(()));
        // every problem at once
        let many = response("nprs", json!([string("pain", "3"), int("mood", 1)]));
        let issues = check_response(&nprs, &many).expect_err("refused");
        assert_eq!(issues.len(), 2);
        assert!(
            issues[0].diagnostics.contains("valueInteger"),
            "{}",
            issues[0].diagnostics
        );
    }

    #[test]
    fn measures_psfs_ratings_are_enabled_by_their_activity() {
        let psfs = q("psfs");
        // a fourth activity named and rated
        let mut four = psfs_response();
        if let Some(items) = four["item"].as_array_mut() {
            items.push(string("activity-4", "Cycling"));
            items.push(int("rating-4", 2));
        }
        assert_eq!(check_response(&psfs, &four), Ok(()));
        assert_eq!(score(by_id("psfs"), &four), Ok(6.3), "25 / 4 = 6.25 -> 6.3");
        // rated but not named: the rating is not enabled
        let mut unnamed = psfs_response();
        if let Some(items) = unnamed["item"].as_array_mut() {
            items.push(int("rating-4", 2));
        }
        assert_eq!(
            refused(&psfs, &unnamed),
            ["QuestionnaireResponse.item[6].answer"]
        );
        // named but not rated: the enabled rating is required
        let mut unrated = psfs_response();
        if let Some(items) = unrated["item"].as_array_mut() {
            items.push(string("activity-5", "Running"));
        }
        assert_eq!(refused(&psfs, &unrated), ["QuestionnaireResponse.item"]);
        // one of the three activities missing, with its rating
        let mut two = psfs_response();
        if let Some(items) = two["item"].as_array_mut() {
            items.drain(4..6);
        }
        let issues = check_response(&psfs, &two).expect_err("refused");
        assert_eq!(issues.len(), 1, "the rating is not required once disabled");
        assert!(issues[0].diagnostics.contains("activity-3"));
    }

    #[test]
    fn measures_enable_when_operators_and_behaviour() {
        let questionnaire = object(json!({
            "resourceType": "Questionnaire",
            "url": "https://example.org/Questionnaire/ops",
            "status": "active",
            "item": [
                {"linkId": "n", "type": "integer"},
                {"linkId": "c", "type": "choice", "answerOption": [
                    {"valueCoding": {"system": "http://example.org/s", "code": "yes"}},
                    {"valueCoding": {"system": "http://example.org/s", "code": "no"}}]},
                {"linkId": "eq", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": "=", "answerInteger": 5}]},
                {"linkId": "ne", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": "!=", "answerInteger": 5}]},
                {"linkId": "gt", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": ">", "answerInteger": 5}]},
                {"linkId": "lt", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": "<", "answerInteger": 5}]},
                {"linkId": "ge", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": ">=", "answerDecimal": 5.0}]},
                {"linkId": "le", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": "<=", "answerInteger": 5}]},
                {"linkId": "none", "type": "string", "required": true,
                 "enableWhen": [{"question": "n", "operator": "exists", "answerBoolean": false}]},
                {"linkId": "yes", "type": "string", "required": true,
                 "enableWhen": [{"question": "c", "operator": "=",
                                 "answerCoding": {"system": "http://example.org/s", "code": "yes"}}]},
                {"linkId": "all", "type": "string", "required": true, "enableBehavior": "all",
                 "enableWhen": [{"question": "n", "operator": ">", "answerInteger": 1},
                                {"question": "c", "operator": "exists", "answerBoolean": true}]},
                {"linkId": "any", "type": "string", "required": true, "enableBehavior": "any",
                 "enableWhen": [{"question": "n", "operator": ">", "answerInteger": 8},
                                {"question": "c", "operator": "exists", "answerBoolean": true}]},
                {"linkId": "grp", "type": "group",
                 "enableWhen": [{"question": "n", "operator": "=", "answerInteger": 0}],
                 "item": [{"linkId": "inner", "type": "string", "required": true}]}
            ]
        }));
        // the items a response may and must answer, for each set of answers
        let enabled = |answers: Vec<Value>| -> Vec<String> {
            let all = [
                "eq", "ne", "gt", "lt", "ge", "le", "none", "yes", "all", "any", "inner",
            ];
            let mut r = object(json!({"resourceType": "QuestionnaireResponse",
                "questionnaire": "https://example.org/Questionnaire/ops", "status": "in-progress"}));
            let mut items = answers.clone();
            items.extend(
                all.iter()
                    .filter(|l| **l != "inner")
                    .map(|l| string(l, "x")),
            );
            items.push(json!({"linkId": "grp", "item": [string("inner", "x")]}));
            r.insert("item".into(), Value::Array(items));
            let refused: Vec<String> = check_response(&questionnaire, &r)
                .err()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| {
                    let at = i.expression?;
                    let index: usize = at
                        .strip_prefix("QuestionnaireResponse.item[")?
                        .split(']')
                        .next()?
                        .parse()
                        .ok()?;
                    if index < answers.len() {
                        return None;
                    }
                    let link = if at.contains(".item[0].item[0]") {
                        "inner"
                    } else {
                        all.get(index - answers.len())?
                    };
                    Some(link.to_string())
                })
                .collect();
            all.iter()
                .filter(|l| !refused.contains(&l.to_string()))
                .map(|l| l.to_string())
                .collect()
        };
        assert_eq!(enabled(vec![int("n", 5)]), ["eq", "ge", "le"]);
        assert_eq!(enabled(vec![int("n", 7)]), ["ne", "gt", "ge"]);
        assert_eq!(enabled(vec![int("n", 9)]), ["ne", "gt", "ge", "any"]);
        assert_eq!(enabled(vec![int("n", 0)]), ["ne", "lt", "le", "inner"]);
        assert_eq!(enabled(vec![]), ["ne", "none"]);
        let yes = json!({"linkId": "c", "answer": [{"valueCoding":
            {"system": "http://example.org/s", "code": "yes"}}]});
        let no = json!({"linkId": "c", "answer": [{"valueCoding":
            {"system": "http://example.org/s", "code": "no"}}]});
        assert_eq!(enabled(vec![yes]), ["ne", "none", "yes", "any"]);
        assert_eq!(
            enabled(vec![no, int("n", 2)]),
            ["ne", "lt", "le", "all", "any"]
        );
        // completed: the enabled required items must be answered
        let done = object(json!({"resourceType": "QuestionnaireResponse",
            "questionnaire": "https://example.org/Questionnaire/ops|x", "status": "completed",
            "item": [int("n", 0), {"linkId": "grp"}]}));
        let at = refused(&questionnaire, &done);
        assert_eq!(
            at,
            [
                // the version is not the Questionnaire's (it has none)
                "QuestionnaireResponse.questionnaire",
                "QuestionnaireResponse.item[1].item",
                "QuestionnaireResponse.item",
                "QuestionnaireResponse.item",
                "QuestionnaireResponse.item",
            ]
        );
    }

    #[test]
    fn measures_score_observation_content() {
        let nprs = score_observation(&ScoreObservation {
            instrument: by_id("nprs"),
            response_id: "r2",
            patient: "Patient/p1",
            plan: Some("CarePlan/c1"),
            effective: "2026-03-30T10:00:00+02:00",
            score: 3.0,
            baseline: Some(7.0),
            mcid_reached: true,
            worsened: false,
        });
        assert_eq!(nprs["status"], "final");
        assert_eq!(nprs["category"][0]["coding"][0]["code"], "survey");
        assert_eq!(nprs["code"]["coding"][0]["code"], "72514-3");
        assert_eq!(nprs["valueInteger"], 3);
        assert_eq!(nprs["subject"]["reference"], "Patient/p1");
        assert_eq!(nprs["basedOn"][0]["reference"], "CarePlan/c1");
        assert_eq!(
            nprs["derivedFrom"][0]["reference"],
            "QuestionnaireResponse/r2"
        );
        assert_eq!(nprs["meta"]["profile"][0], profile_url());
        assert_eq!(
            nprs["component"][0]["code"]["coding"][0]["code"],
            "change-from-baseline"
        );
        assert_eq!(nprs["component"][0]["valueInteger"], -4);
        assert_eq!(
            nprs["interpretation"][0]["coding"][0]["code"],
            "mcid-reached"
        );
        assert_eq!(nprs["interpretation"].as_array().map(Vec::len), Some(1));
        let psfs = score_observation(&ScoreObservation {
            instrument: by_id("psfs"),
            response_id: "r3",
            patient: "Patient/p1",
            plan: None,
            effective: "2026-03-30",
            score: 3.3,
            baseline: Some(5.3),
            mcid_reached: false,
            worsened: true,
        });
        assert_eq!(psfs["valueQuantity"]["value"], 3.3);
        assert_eq!(psfs["valueQuantity"]["code"], "{score}");
        assert_eq!(psfs["valueQuantity"]["system"], UCUM);
        assert_eq!(psfs["component"][0]["valueQuantity"]["value"], -2.0);
        assert_eq!(psfs["interpretation"][0]["coding"][0]["code"], "worsened");
        assert!(psfs.get("basedOn").is_none());
        let groc = score_observation(&ScoreObservation {
            instrument: by_id("groc"),
            response_id: "r4",
            patient: "Patient/p1",
            plan: None,
            effective: "2026-03-30",
            score: 4.0,
            baseline: Some(1.0),
            mcid_reached: true,
            worsened: false,
        });
        assert!(groc.get("component").is_none(), "the rating is the change");
        assert!(groc.get("interpretation").is_some());
    }

    #[test]
    fn measures_outcomes_parameters_and_csv() {
        let at = |s: &str| s.parse::<Timestamp>().expect("ts");
        let tz = TimeZone::get("Europe/Paris").expect("tz");
        let nprs = by_id("nprs");
        let groc = by_id("groc");
        let series = [
            MeasureSeries {
                instrument: nprs,
                points: domain::outcome::series(
                    &nprs.rule,
                    &[
                        (at("2026-03-02T09:00:00Z"), 7.0),
                        (at("2026-03-30T08:00:00Z"), 5.0),
                    ],
                ),
                observations: vec!["o1".into(), "o2".into()],
            },
            MeasureSeries {
                instrument: groc,
                points: domain::outcome::series(&groc.rule, &[(at("2026-03-30T08:00:00Z"), 2.0)]),
                observations: vec!["o3".into()],
            },
        ];
        let p = outcomes_parameters("CarePlan/c1", &series, &tz);
        assert_eq!(
            p["parameter"][0]["valueReference"]["reference"],
            "CarePlan/c1"
        );
        let part = |m: &Value, name: &str| -> Value {
            m["part"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let pain = &p["parameter"][1];
        assert_eq!(pain["name"], "measure");
        assert_eq!(
            part(pain, "questionnaire")["valueCanonical"],
            format!("{}|1.0.0", url("nprs"))
        );
        assert_eq!(part(pain, "direction")["valueCode"], "lower-is-better");
        assert_eq!(part(pain, "mcid")["valueDecimal"], 2.0);
        assert_eq!(part(pain, "baseline")["valueDecimal"], 7.0);
        assert_eq!(part(pain, "latest")["valueDecimal"], 5.0);
        assert_eq!(part(pain, "change")["valueDecimal"], -2.0);
        assert_eq!(part(pain, "mcidReached")["valueBoolean"], true);
        let scores: Vec<&Value> = pain["part"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["name"] == "score").collect())
            .unwrap_or_default();
        assert_eq!(scores.len(), 2);
        assert_eq!(
            part(scores[0], "date")["valueDateTime"],
            "2026-03-02T10:00:00+01:00"
        );
        assert_eq!(
            part(scores[1], "date")["valueDateTime"],
            "2026-03-30T10:00:00+02:00"
        );
        assert!(
            part(scores[0], "change").is_null(),
            "the baseline has no change"
        );
        assert_eq!(
            part(scores[1], "observation")["valueReference"]["reference"],
            "Observation/o2"
        );
        let global = &p["parameter"][2];
        assert!(part(global, "baseline").is_null());
        assert_eq!(part(global, "latest")["valueDecimal"], 2.0);
        assert_eq!(part(global, "mcidReached")["valueBoolean"], false);
        let csv = outcomes_csv(&series, &tz);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "questionnaire,title,date,score,change_from_baseline,mcid_reached,observation",
                "https://hep-fhir.org/fhir/Questionnaire/nprs|1.0.0,Numeric Pain Rating Scale,2026-03-02T10:00:00+01:00,7,,false,Observation/o1",
                "https://hep-fhir.org/fhir/Questionnaire/nprs|1.0.0,Numeric Pain Rating Scale,2026-03-30T10:00:00+02:00,5,-2,true,Observation/o2",
                "https://hep-fhir.org/fhir/Questionnaire/groc|1.0.0,Global Rating of Change,2026-03-30T10:00:00+02:00,2,,false,Observation/o3",
            ]
        );
    }
}
