//! The take-home sheet of a program: a print-ready HTML page with the patient's name,
//! the therapist's contact, the program period, and every exercise with its steps and
//! its whole dose in words (frequency, duration, sets, repetitions), and the date it was
//! produced. Everything from a resource is escaped.

use serde_json::{Map, Value};

/// One exercise on the sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoutExercise {
    pub name: String,
    /// Numbered steps, from the library exercise (empty when it has none).
    pub steps: Vec<String>,
    /// The dose and schedule in words (`patientInstruction`).
    pub dose: String,
    /// An image of the exercise, when the library has one.
    pub image: Option<String>,
}

/// What the sheet shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handout {
    pub title: String,
    pub patient: String,
    pub therapist: Option<String>,
    /// Phone numbers and e-mail addresses of the therapist.
    pub contacts: Vec<String>,
    pub period: String,
    pub exercises: Vec<HandoutExercise>,
    /// The date the sheet was produced (patient-facing, `2026-11-27`).
    pub produced: String,
}

/// A person's name from `HumanName`s: the official (or first) one, given then family.
pub fn person_name(json: &Map<String, Value>) -> Option<String> {
    let names = json.get("name")?.as_array()?;
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(Value::as_str) == Some("official"))
        .or_else(|| names.first())?;
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return Some(text.to_string());
    }
    let mut parts: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(f) = name.get("family").and_then(Value::as_str) {
        parts.push(f);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Phone numbers and e-mail addresses (`telecom`).
pub fn contacts(json: &Map<String, Value>) -> Vec<String> {
    json.get("telecom")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter(|c| {
                    matches!(
                        c.get("system").and_then(Value::as_str),
                        Some("phone" | "email")
                    )
                })
                .filter_map(|c| c.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The steps of a library exercise (its `description`, one numbered step a line).
pub fn steps(activity_definition: &Map<String, Value>) -> Vec<String> {
    activity_definition
        .get("description")
        .and_then(Value::as_str)
        .map(|d| {
            d.lines()
                .map(|l| {
                    let l = l.trim();
                    match l.split_once(". ") {
                        Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
                            rest.to_string()
                        }
                        _ => l.to_string(),
                    }
                })
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// An image among the library exercise's `relatedArtifact` attachments.
pub fn image(activity_definition: &Map<String, Value>) -> Option<String> {
    activity_definition
        .get("relatedArtifact")?
        .as_array()?
        .iter()
        .filter_map(|a| a.get("document"))
        .find(|d| {
            d.get("contentType")
                .and_then(Value::as_str)
                .is_some_and(|c| c.starts_with("image/"))
        })
        .and_then(|d| d.get("url").and_then(Value::as_str))
        .map(str::to_string)
}

/// Exercises per printed page.
const PER_PAGE: usize = 3;

mod pdf;
pub use pdf::render_pdf;

/// The sheet's style sheet, inline in its `<style>` element (an app that shows the sheet
/// allows it in its Content-Security-Policy by its SHA-256).
pub const SHEET_CSS: &str = "\
@page{size:A4;margin:16mm}\
body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:12pt;color:#111;margin:0}\
header{border-bottom:2px solid #333;margin-bottom:8mm;padding-bottom:3mm}\
h1{font-size:18pt;margin:0 0 2mm}\
.meta{display:flex;flex-wrap:wrap;gap:2mm 10mm;font-size:11pt}\
.exercise{break-inside:avoid;page-break-inside:avoid;border:1px solid #bbb;border-radius:3mm;padding:4mm;margin-bottom:6mm}\
.exercise h2{font-size:14pt;margin:0 0 2mm}\
.dose{font-weight:bold;background:#f1f1f1;padding:2mm;border-radius:2mm}\
.exercise img{max-width:60mm;max-height:45mm;float:right;margin-left:4mm}\
.page-break{break-after:page;page-break-after:always}\
footer{font-size:9pt;color:#555;margin-top:6mm}\
@media screen{body{max-width:190mm;margin:10mm auto}}";

/// The sheet as a complete HTML document.
pub fn render_html(h: &Handout) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(&format!("<title>{}</title>", super::escape(&h.title)));
    out.push_str("<style>");
    out.push_str(SHEET_CSS);
    out.push_str("</style></head><body>");
    out.push_str(&format!(
        "<header><h1>{}</h1><div class=\"meta\">",
        super::escape(&h.title)
    ));
    out.push_str(&format!(
        "<span><b>Patient:</b> {}</span>",
        super::escape(&h.patient)
    ));
    if let Some(t) = &h.therapist {
        out.push_str(&format!(
            "<span><b>Therapist:</b> {}</span>",
            super::escape(t)
        ));
    }
    if !h.contacts.is_empty() {
        let c: Vec<String> = h.contacts.iter().map(|c| super::escape(c)).collect();
        out.push_str(&format!("<span><b>Contact:</b> {}</span>", c.join(", ")));
    }
    out.push_str(&format!(
        "<span><b>Program:</b> {}</span>",
        super::escape(&h.period)
    ));
    out.push_str("</div></header><main>");
    if h.exercises.is_empty() {
        out.push_str("<p>No exercises yet.</p>");
    }
    for (i, e) in h.exercises.iter().enumerate() {
        out.push_str("<section class=\"exercise\">");
        if let Some(src) = &e.image {
            out.push_str(&format!(
                "<img src=\"{}\" alt=\"{}\">",
                super::escape(src),
                super::escape(&e.name)
            ));
        }
        out.push_str(&format!("<h2>{}. {}</h2>", i + 1, super::escape(&e.name)));
        out.push_str(&format!("<p class=\"dose\">{}</p>", super::escape(&e.dose)));
        if !e.steps.is_empty() {
            out.push_str("<ol>");
            for s in &e.steps {
                out.push_str(&format!("<li>{}</li>", super::escape(s)));
            }
            out.push_str("</ol>");
        }
        out.push_str("</section>");
        if (i + 1) % PER_PAGE == 0 && i + 1 < h.exercises.len() {
            out.push_str("<div class=\"page-break\"></div>");
        }
    }
    out.push_str(&format!(
        "</main><footer>Produced on {}. Stop an exercise that causes sharp pain, and tell your therapist.</footer></body></html>\n",
        super::escape(&h.produced)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn sample() -> Handout {
        Handout {
            title: "Knee <phase 1>".into(),
            patient: "Sam O'Rivera".into(),
            therapist: Some("Jordan Lee".into()),
            contacts: vec!["555-0100".into()],
            period: "from 2026-11-30 to 2027-01-10".into(),
            exercises: (0..4)
                .map(|i| HandoutExercise {
                    name: format!("Exercise {i}"),
                    steps: vec!["Sit tall.".into(), "Breathe <slowly>.".into()],
                    dose: "3 sets of 10 repetitions, twice a day, every day for 6 weeks.".into(),
                    image: None,
                })
                .collect(),
            produced: "2026-11-27".into(),
        }
    }

    #[test]
    fn everything_from_resources_is_escaped() {
        let html = render_html(&sample());
        assert!(html.contains("<h1>Knee &lt;phase 1&gt;</h1>"));
        assert!(html.contains("Sam O&#39;Rivera"));
        assert!(html.contains("<li>Breathe &lt;slowly&gt;.</li>"));
        assert!(!html.contains("<slowly>"));
    }

    #[test]
    fn pages_break_after_every_third_exercise() {
        let html = render_html(&sample());
        assert_eq!(html.matches("class=\"page-break\"").count(), 1);
        assert_eq!(html.matches("<section class=\"exercise\">").count(), 4);
        assert!(html.contains("Produced on 2026-11-27"));
    }

    #[test]
    fn names_contacts_and_steps_from_resources() {
        let p = json!({"name": [{"use": "usual", "given": ["Sammy"]}, {"use": "official", "family": "Rivera", "given": ["Sam", "J"]}],
                       "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "fax", "value": "x"}, {"system": "email", "value": "a@b.c"}]});
        let p = p.as_object().cloned().unwrap_or_default();
        assert_eq!(person_name(&p).as_deref(), Some("Sam J Rivera"));
        assert_eq!(contacts(&p), ["555-0100", "a@b.c"]);
        let ad = json!({"description": "1. Sit tall.\n2. Lift.\n", "relatedArtifact": [{"type": "documentation", "document": {"contentType": "image/png", "url": "Binary/img1"}}]});
        let ad = ad.as_object().cloned().unwrap_or_default();
        assert_eq!(steps(&ad), ["Sit tall.", "Lift."]);
        assert_eq!(image(&ad).as_deref(), Some("Binary/img1"));
    }
}
