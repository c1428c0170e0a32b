//! The sign-in pages a person sees (sign in, the code from the clinic, consent, an
//! error) as complete HTML documents, and their one stylesheet. No script, no external
//! asset, no inline style: the policy of [`csp`] allows the stylesheet at
//! [`STYLESHEET_PATH`] and nothing else. Pure: the handlers pass every value in, and
//! every value is escaped here.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::auth::ADMIN_SCOPE;
use crate::auth::scopes::{Context, Perm, Scope};

/// What every page form carries.
pub struct Form<'a> {
    /// The pending authorization request (an opaque signed string).
    pub request: &'a str,
    /// The form's token against cross-site requests.
    pub csrf: &'a str,
}

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/auth/pages.css";

/// The stylesheet served at GET /auth/pages.css.
///
/// Base font 17px, targets at least 44px (2.75rem) high, a visible focus outline, and
/// colours of at least 4.5:1 against their background (the tests compute them).
pub const STYLESHEET: &str = r#"*, *::before, *::after { box-sizing: border-box; }
html { font-size: 100%; -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  background: #f4f6f8;
  color: #1b1f24;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 1.0625rem;
  line-height: 1.5;
}
main { max-width: 34rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; background: #ffffff; }
@media (min-width: 40rem) {
  main { margin: 3rem auto; padding: 2rem 2.5rem; border: 1px solid #c9d1d9; border-radius: 0.5rem; }
}
h1 { font-size: 1.625rem; line-height: 1.25; margin: 0 0 1rem; }
h2 { font-size: 1.25rem; line-height: 1.3; margin: 1.5rem 0 0.5rem; }
p { margin: 0 0 1rem; }
a { color: #0a58a8; text-decoration: underline; text-underline-offset: 0.15em; }
a:hover { color: #083f78; }
:focus { outline: 3px solid #1b1f24; outline-offset: 2px; }
:focus:not(:focus-visible) { outline: none; }
:focus-visible { outline: 3px solid #1b1f24; outline-offset: 2px; }
.lead { font-size: 1.125rem; }
.field { margin: 0 0 1.25rem; }
label { display: block; font-weight: 600; margin: 0 0 0.25rem; }
.hint { color: #4a5561; font-size: 1rem; margin: 0 0 0.375rem; }
input:not([type]), input[type="text"], input[type="password"], input[type="date"], input[type="search"] {
  display: block;
  width: 100%;
  min-height: 2.75rem;
  padding: 0.5rem 0.75rem;
  font: inherit;
  color: #1b1f24;
  background: #ffffff;
  border: 2px solid #5b6672;
  border-radius: 0.375rem;
}
input[aria-invalid="true"] { border-color: #b00020; }
button {
  display: inline-block;
  min-height: 2.75rem;
  min-width: 2.75rem;
  padding: 0.625rem 1.25rem;
  font: inherit;
  font-weight: 600;
  color: #ffffff;
  background: #0a58a8;
  border: 2px solid #0a58a8;
  border-radius: 0.375rem;
  cursor: pointer;
}
button:hover { color: #ffffff; background: #083f78; border-color: #083f78; }
button.secondary, button[value="deny"] { color: #0a58a8; background: #ffffff; }
button.secondary:hover, button[value="deny"]:hover { color: #083f78; background: #eef4fb; }
form > button[type="submit"] { width: 100%; }
.error {
  color: #8f0016;
  background: #fdeced;
  border-left: 0.375rem solid #b00020;
  border-radius: 0.25rem;
  padding: 0.75rem 1rem;
  font-weight: 600;
}
.other { margin: 1.5rem 0 0; }
.other a { display: inline-block; min-height: 2.75rem; padding: 0.625rem 0; }
.scopes { margin: 0 0 1.5rem; padding-left: 1.25rem; }
.scopes li { margin: 0.25rem 0; }
.search { display: flex; gap: 0.5rem; margin: 0 0 1rem; }
.search input[type="search"] { flex: 1 1 auto; min-width: 0; }
fieldset { margin: 0 0 1rem; padding: 0; border: 0; min-width: 0; }
legend { font-weight: 600; margin: 0 0 0.5rem; padding: 0; }
.choice {
  display: flex;
  align-items: center;
  gap: 0.75rem;
  min-height: 2.75rem;
  margin: 0 0 0.5rem;
  padding: 0 0.75rem;
  border: 1px solid #c9d1d9;
  border-radius: 0.375rem;
}
.choice input { flex: none; width: 1.5rem; height: 1.5rem; margin: 0; accent-color: #0a58a8; }
.choice label { flex: 1 1 auto; margin: 0; padding: 0.5rem 0; font-weight: 400; cursor: pointer; }
.detail { display: block; color: #4a5561; font-size: 1rem; }
.actions { display: flex; flex-wrap: wrap; gap: 0.75rem; margin: 1.5rem 0 0; }
.actions button { flex: 1 1 8rem; }
@media (forced-colors: active) {
  button, .choice { border: 2px solid ButtonText; }
  :focus-visible { outline-color: Highlight; }
}
"#;

/// The Content-Security-Policy of a page whose forms may lead (by a 302 after the post)
/// to `redirect_origin`.
///
/// Chromium applies `form-action` to the redirect that follows a form post, so the
/// policy names the app's origin: of a URL with a host, its origin
/// (`https://app.example`; a path is dropped); of a URL of an app's own scheme
/// (`com.example.app:/callback`), that scheme (`com.example.app:`). Anything else (not
/// a URL, a `javascript:` or `data:` URL) is left out.
pub fn csp(redirect_origin: Option<&str>) -> String {
    let mut form_action = String::from("'self'");
    if let Some(source) = redirect_origin.and_then(source_expression) {
        form_action.push(' ');
        form_action.push_str(&source);
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The CSP source expression that allows `origin` (see [`csp`]).
fn source_expression(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin.trim()).ok()?;
    let source = match url.origin() {
        tuple @ url::Origin::Tuple(..) => Some(tuple.ascii_serialization()),
        url::Origin::Opaque(_) => {
            let scheme = url.scheme();
            let active = [
                "javascript",
                "data",
                "blob",
                "file",
                "filesystem",
                "about",
                "vbscript",
            ];
            (!active.contains(&scheme)).then(|| format!("{scheme}:"))
        }
    }?;
    // a host may hold characters a policy reads as syntax (`;`, `,`, `*`, quotes)
    source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.:/[]".contains(&b))
        .then_some(source)
}

/// The sign-in page: username and password, and the link to the code page. `username`
/// fills the field again after a wrong password; `error` is shown above the form.
pub fn sign_in(
    clinic: &str,
    app: &str,
    form: &Form,
    username: &str,
    error: Option<&str>,
) -> String {
    let invalid = error.is_some();
    let mut body = format!(
        "<h1>Sign in to {clinic}</h1>\n\
         <p class=\"lead\">Sign in with your account at {clinic} to continue to <strong>{app}</strong>.</p>\n",
        clinic = escape(clinic),
        app = escape(app),
    );
    body.push_str(&alert(error));
    body.push_str("<form method=\"post\" action=\"/auth/login\">\n");
    body.push_str(&hidden(form));
    body.push_str(&field(
        &Field {
            id: "username",
            label: "Username",
            kind: None,
            autocomplete: "username",
            value: username,
            hint: None,
            extra: " required autocapitalize=\"none\" spellcheck=\"false\"",
            invalid,
        },
        error,
    ));
    body.push_str(&field(
        &Field {
            id: "password",
            label: "Password",
            kind: Some("password"),
            autocomplete: "current-password",
            value: "",
            hint: None,
            extra: " required",
            invalid,
        },
        error,
    ));
    body.push_str("<button type=\"submit\">Sign in</button>\n</form>\n");
    body.push_str(&format!(
        "<p class=\"other\">New here? <a href=\"{}\">I have a code from my clinic</a></p>\n",
        escape(&redeem_link(form.request)),
    ));
    page(&titled(&format!("Sign in to {clinic}"), error), &body)
}

/// The link from the sign-in page to the code page, for the pending `request`.
pub fn redeem_link(request: &str) -> String {
    format!(
        "/auth/redeem?request={}",
        utf8_percent_encode(request, QUERY_VALUE)
    )
}

/// What is percent-encoded in a query value: everything but letters, digits and
/// `-._~` (RFC 3986's unreserved characters).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The code page: a patient's invitation code (with their birth date) or a staff
/// member's set-up code, and the username and password of the new account.
pub fn redeem(clinic: &str, app: &str, form: &Form, error: Option<&str>) -> String {
    let mut body = format!(
        "<h1>Create your account</h1>\n\
         <p class=\"lead\">Use the code {clinic} gave you to create your account, \
         then continue to <strong>{app}</strong>.</p>\n",
        clinic = escape(clinic),
        app = escape(app),
    );
    body.push_str(&alert(error));
    body.push_str("<form method=\"post\" action=\"/auth/redeem\">\n");
    body.push_str(&hidden(form));
    let fields = [
        Field {
            id: "code",
            label: "Code",
            kind: None,
            autocomplete: "one-time-code",
            value: "",
            hint: Some("The code on the sheet or in the message from your clinic."),
            extra: " required autocapitalize=\"characters\" spellcheck=\"false\"",
            invalid: false,
        },
        Field {
            id: "birth_date",
            label: "Date of birth",
            kind: Some("date"),
            autocomplete: "bday",
            value: "",
            hint: Some(
                "Patients: your date of birth as your clinic has it. \
                 Staff with a set-up code can leave it empty.",
            ),
            extra: "",
            invalid: false,
        },
        Field {
            id: "username",
            label: "Choose a username",
            kind: None,
            autocomplete: "username",
            value: "",
            hint: None,
            extra: " required autocapitalize=\"none\" spellcheck=\"false\"",
            invalid: false,
        },
        Field {
            id: "password",
            label: "Choose a password",
            kind: Some("password"),
            autocomplete: "new-password",
            value: "",
            hint: None,
            extra: " required",
            invalid: false,
        },
    ];
    for f in &fields {
        body.push_str(&field(f, error));
    }
    body.push_str("<button type=\"submit\">Create my account</button>\n</form>\n");
    page(&titled("Create your account", error), &body)
}

/// One patient a staff member may pick on the consent page.
pub struct PatientChoice<'a> {
    /// The value the form sends (`patient`).
    pub id: &'a str,
    /// The name shown.
    pub name: &'a str,
    /// Shown beside the name, to tell patients of the same name apart.
    pub birth_date: Option<&'a str>,
}

/// What the consent page shows.
pub struct Consent<'a> {
    /// The clinic's name.
    pub clinic: &'a str,
    /// The app's name.
    pub app: &'a str,
    /// The name of the person signed in.
    pub person: &'a str,
    /// The scopes the app asks for, each listed in words ([`describe_scope_for`]).
    pub scopes: &'a [String],
    /// Some: a staff member picks the patient (the app asked `launch/patient`), among
    /// these (those that match `query`).
    pub patients: Option<&'a [PatientChoice<'a>]>,
    /// The text the patients were filtered by (empty: none).
    pub query: &'a str,
}

/// The consent page: what the app asks for in words, the patients a staff member picks
/// from (with a filter form), and Allow and Deny.
pub fn consent(c: &Consent, form: &Form, error: Option<&str>) -> String {
    let app = escape(c.app);
    let reader = if c.patients.is_some() {
        Reader::Staff
    } else {
        Reader::Patient
    };
    let mut body = format!(
        "<h1>Allow {app} to use your account?</h1>\n\
         <p class=\"lead\">You are signed in to {clinic} as <strong>{person}</strong>.</p>\n",
        clinic = escape(c.clinic),
        person = escape(c.person),
    );
    body.push_str(&alert(error));
    let mut said: Vec<String> = Vec::new();
    for scope in c.scopes {
        let words = describe_scope_for(scope, reader);
        if !said.contains(&words) {
            said.push(words);
        }
    }
    if said.is_empty() {
        body.push_str(&format!(
            "<p>{app} asks only to know that you signed in.</p>\n"
        ));
    } else {
        body.push_str(&format!("<h2>{app} asks to:</h2>\n<ul class=\"scopes\">\n"));
        for words in &said {
            body.push_str(&format!("<li>{}</li>\n", escape(words)));
        }
        body.push_str("</ul>\n");
    }
    let described = describedby(&[error.map(|_| ERROR_ID)]);
    if let Some(patients) = c.patients {
        body.push_str(&format!(
            "<h2>Choose the patient</h2>\n\
             <form method=\"get\" action=\"/auth/consent\" role=\"search\">\n\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
             <label for=\"q\">Find a patient by name</label>\n\
             <div class=\"search\">\
             <input id=\"q\" name=\"q\" type=\"search\" autocomplete=\"off\" value=\"{query}\">\
             <button type=\"submit\" class=\"secondary\">Find</button></div>\n\
             </form>\n",
            request = escape(form.request),
            query = escape(c.query),
        ));
        body.push_str("<form method=\"post\" action=\"/auth/consent\">\n");
        body.push_str(&hidden(form));
        body.push_str(&format!(
            "<fieldset{described}>\n<legend>The patient you work with</legend>\n"
        ));
        if patients.is_empty() {
            if c.query.is_empty() {
                body.push_str("<p>There are no patients to choose from.</p>\n");
            } else {
                body.push_str(&format!(
                    "<p>No patient matches \u{201c}{}\u{201d}.</p>\n",
                    escape(c.query)
                ));
            }
        }
        for (i, p) in patients.iter().enumerate() {
            let born = p
                .birth_date
                .map(|d| format!("<span class=\"detail\">Born {}</span>", escape(d)))
                .unwrap_or_default();
            body.push_str(&format!(
                "<div class=\"choice\">\
                 <input id=\"patient-{i}\" name=\"patient\" type=\"radio\" value=\"{id}\">\
                 <label for=\"patient-{i}\">{name}{born}</label></div>\n",
                id = escape(p.id),
                name = escape(p.name),
            ));
        }
        body.push_str("</fieldset>\n");
    } else {
        body.push_str("<form method=\"post\" action=\"/auth/consent\">\n");
        body.push_str(&hidden(form));
    }
    body.push_str(&format!(
        "<div class=\"actions\" role=\"group\" aria-label=\"Your answer\"{described}>\n\
         <button name=\"decision\" value=\"allow\">Allow</button>\n\
         <button name=\"decision\" value=\"deny\">Deny</button>\n\
         </div>\n</form>\n"
    ));
    page(&titled(&format!("Allow {}?", c.app), error), &body)
}

/// A page that only says what went wrong (an unknown app, a request that has expired).
pub fn error(title: &str, message: &str) -> String {
    let body = format!("<h1>{}</h1>\n<p>{}</p>\n", escape(title), escape(message));
    page(title, &body)
}

/// Who reads the consent page: `launch/patient` means a different thing to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A patient: the app learns which patient they are.
    Patient,
    /// A staff member: they pick the patient they work with.
    Staff,
}

/// A SMART scope in plain words for a patient or a clinician ("See your exercise
/// sessions", "Stay signed in when you are not using the app", ...); `launch/patient` as
/// a patient reads it ([`describe_scope_for`] says it for staff). Plain text, not
/// escaped.
#[cfg(test)]
pub fn describe_scope(scope: &str) -> String {
    describe_scope_for(scope, Reader::Patient)
}

/// A SMART scope in plain words for `reader` (see [`describe_scope`]). Resource scopes
/// (v1 `patient/Observation.read`, v2 `user/Task.cruds`, with a search restriction) are
/// read as the server reads them ([`Scope::parse`]); a scope it does not know is named.
pub fn describe_scope_for(scope: &str, reader: Reader) -> String {
    let words = match (scope, reader) {
        ("openid", _) => "Confirm that it is you who signed in",
        ("fhirUser", _) => "Know which record at the clinic is yours",
        ("profile", _) => "See your name",
        ("offline_access", _) => "Stay signed in when you are not using the app",
        ("online_access", _) => "Stay signed in while you are using the app",
        ("launch", _) => "Start with the patient already chosen in the clinic's system",
        ("launch/patient", Reader::Patient) => "Know who you are as a patient of the clinic",
        ("launch/patient", Reader::Staff) => "Choose the patient you work with",
        ("launch/encounter", _) => "Know which visit it was opened for",
        (s, _) if s == ADMIN_SCOPE => "Manage the clinic's apps and see who used its records",
        (s, _) => {
            return match Scope::parse(s) {
                Some(parsed) => describe_resource_scope(&parsed),
                None => format!("Use the permission \u{201c}{s}\u{201d}"),
            };
        }
    };
    words.to_string()
}

/// A resource scope in words: what may be done ("see, add, change and delete"), to
/// whose records, and the search restriction.
fn describe_resource_scope(scope: &Scope) -> String {
    let probe = scope.resource_type.as_deref().unwrap_or("Patient");
    let can = |perm| scope.covers(probe, perm);
    let mut verbs = Vec::new();
    if can(Perm::Read) || can(Perm::Search) {
        verbs.push("see");
    }
    if can(Perm::Create) {
        verbs.push("add");
    }
    if can(Perm::Update) {
        verbs.push("change");
    }
    if can(Perm::Delete) {
        verbs.push("delete");
    }
    let verbs = match verbs.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "use".to_string(),
    };
    let mut out = capitalized(&verbs);
    out.push(' ');
    out.push_str(&records(scope.resource_type.as_deref(), scope.context));
    if !scope.restriction.is_empty() {
        let conditions: Vec<String> = scope
            .restriction
            .iter()
            .map(|(name, value)| format!("{name} is {value}"))
            .collect();
        out.push_str(&format!(" (only where {})", conditions.join(" and ")));
    }
    out
}

/// The records of one type (`None`: every type) of the patient (`Context::Patient`:
/// "your") or of the clinic, in words.
fn records(resource_type: Option<&str>, context: Context) -> String {
    let yours = context == Context::Patient;
    let (own, clinic) = match resource_type {
        None => ("all your records", "all the clinic's records"),
        Some("Task") => ("your exercise sessions", "patients' exercise sessions"),
        Some("CarePlan") => ("your exercise program", "patients' exercise programs"),
        Some("ServiceRequest") => (
            "your prescribed exercises",
            "patients' prescribed exercises",
        ),
        Some("Observation") => (
            "your measurements and pain scores",
            "patients' measurements and pain scores",
        ),
        Some("Patient") => ("your details", "patients' details"),
        Some("Goal") => ("your goals", "patients' goals"),
        Some("QuestionnaireResponse") => (
            "your answers to questionnaires",
            "patients' answers to questionnaires",
        ),
        Some("Questionnaire") => ("the clinic's questionnaires", "the clinic's questionnaires"),
        Some("Communication") => (
            "your messages with the clinic",
            "messages between patients and the clinic",
        ),
        Some("ActivityDefinition") => (
            "the clinic's exercise library",
            "the clinic's exercise library",
        ),
        Some("PlanDefinition") => (
            "the clinic's program templates",
            "the clinic's program templates",
        ),
        Some("Practitioner") => (
            "details of the clinic's staff",
            "details of the clinic's staff",
        ),
        Some("PractitionerRole") => (
            "the roles of the clinic's staff",
            "the roles of the clinic's staff",
        ),
        Some("Organization") => ("details of the clinic", "details of the clinic"),
        Some("Condition") => ("your health conditions", "patients' health conditions"),
        Some("Encounter") => ("your visits", "patients' visits"),
        Some("Appointment") => ("your appointments", "patients' appointments"),
        Some("DocumentReference") => ("your documents", "patients' documents"),
        Some("Group") => ("the clinic's patient groups", "the clinic's patient groups"),
        Some("Subscription") => (
            "notices of changes to your records",
            "notices of changes to the clinic's records",
        ),
        Some("AuditEvent") => (
            "the record of who used your records",
            "the record of who used the clinic's records",
        ),
        Some(other) => {
            let words = type_in_words(other);
            return if yours {
                format!("your {words} records")
            } else {
                format!("the clinic's {words} records")
            };
        }
    };
    if yours { own } else { clinic }.to_string()
}

/// A resource type in lower-case words: `MedicationRequest` -> "medication request".
fn type_in_words(resource_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in resource_type.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Text for HTML: the markup characters (`&`, `<`, `>`, `"`, `'`) as character
/// references, so that a value is text in an element and in a quoted attribute alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The id of a page's error message.
const ERROR_ID: &str = "error";

/// A complete document: `title` (plain text) and `body` (HTML) inside `<main>`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n\
         </head>\n\
         <body>\n\
         <main>\n\
         {body}\
         </main>\n\
         </body>\n\
         </html>\n",
        title = escape(title),
    )
}

/// A page's title, which says first that something went wrong when it did.
fn titled(title: &str, error: Option<&str>) -> String {
    match error {
        Some(_) => format!("Error: {title}"),
        None => title.to_string(),
    }
}

/// The error message of a page, announced when the page opens.
fn alert(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                "<p id=\"{ERROR_ID}\" class=\"error\" role=\"alert\">{}</p>\n",
                escape(e)
            )
        })
        .unwrap_or_default()
}

/// The hidden inputs every posted form carries.
fn hidden(form: &Form) -> String {
    format!(
        "<input type=\"hidden\" name=\"request\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(form.request),
        escape(form.csrf),
    )
}

/// ` aria-describedby="…"` naming the given ids, or nothing.
fn describedby(ids: &[Option<&str>]) -> String {
    let ids: Vec<&str> = ids.iter().flatten().copied().collect();
    if ids.is_empty() {
        String::new()
    } else {
        format!(" aria-describedby=\"{}\"", ids.join(" "))
    }
}

/// One labelled input (its `id` is also its `name`).
struct Field<'a> {
    id: &'a str,
    label: &'a str,
    /// `type`; `None` for a text input (no `type` written).
    kind: Option<&'a str>,
    autocomplete: &'a str,
    /// Empty: no value.
    value: &'a str,
    hint: Option<&'a str>,
    /// Further attributes, written by this module (nothing interpolated).
    extra: &'a str,
    /// Marked invalid when the page shows an error.
    invalid: bool,
}

/// A label, an optional hint and the input, described by the hint and the page's error.
fn field(f: &Field, error: Option<&str>) -> String {
    let hint_id = format!("{}-hint", f.id);
    let mut out = format!(
        "<div class=\"field\">\n<label for=\"{id}\">{label}</label>\n",
        id = f.id,
        label = escape(f.label),
    );
    if let Some(hint) = f.hint {
        out.push_str(&format!(
            "<p class=\"hint\" id=\"{hint_id}\">{}</p>\n",
            escape(hint)
        ));
    }
    out.push_str(&format!("<input id=\"{id}\" name=\"{id}\"", id = f.id));
    if let Some(kind) = f.kind {
        out.push_str(&format!(" type=\"{kind}\""));
    }
    out.push_str(&format!(" autocomplete=\"{}\"", f.autocomplete));
    if !f.value.is_empty() {
        out.push_str(&format!(" value=\"{}\"", escape(f.value)));
    }
    out.push_str(f.extra);
    out.push_str(&describedby(&[
        f.hint.map(|_| hint_id.as_str()),
        error.map(|_| ERROR_ID),
    ]));
    if f.invalid && error.is_some() {
        out.push_str(" aria-invalid=\"true\"");
    }
    out.push_str(">\n</div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Form<'static> = Form {
        request: "eyJhbGciOi.J9-x_y~z+/=",
        csrf: "c5rf-t0ken",
    };

    /// The attributes of every `<tag …>` of `html`, in order (the pages write every
    /// value in double quotes, escaped, so a value holds no `"` and no `>`).
    fn tags<'h>(html: &'h str, tag: &str) -> Vec<Vec<(&'h str, &'h str)>> {
        let open = format!("<{tag}");
        let mut found = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find(&open) {
            let after = &rest[at + open.len()..];
            let end = after.find('>').expect("a closed tag");
            rest = &after[end..];
            if !(after.starts_with(' ') || after.starts_with('>')) {
                continue;
            }
            found.push(attributes(&after[..end]));
        }
        found
    }

    fn attributes(mut s: &str) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        loop {
            s = s.trim_start();
            if s.is_empty() {
                return out;
            }
            let name_end = s.find(['=', ' ']).unwrap_or(s.len());
            let name = &s[..name_end];
            s = &s[name_end..];
            if let Some(quoted) = s.strip_prefix("=\"") {
                let end = quoted.find('"').expect("a closing quote");
                out.push((name, &quoted[..end]));
                s = &quoted[end + 1..];
            } else {
                out.push((name, ""));
            }
        }
    }

    fn attr<'h>(attrs: &[(&'h str, &'h str)], name: &str) -> Option<&'h str> {
        attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn input<'h>(html: &'h str, id: &str) -> Vec<(&'h str, &'h str)> {
        tags(html, "input")
            .into_iter()
            .find(|a| attr(a, "id") == Some(id))
            .unwrap_or_else(|| panic!("no input #{id} in {html}"))
    }

    /// The text between `start` and the next `end` after it.
    fn between<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
        let from = html.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
        let to = html[from..].find(end).unwrap_or_else(|| panic!("no {end}"));
        &html[from..from + to]
    }

    fn scopes(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn patients() -> Vec<PatientChoice<'static>> {
        vec![
            PatientChoice {
                id: "p-1",
                name: "Ada Lovelace",
                birth_date: Some("1815-12-10"),
            },
            PatientChoice {
                id: "p-2",
                name: "Ada Lovelace",
                birth_date: None,
            },
        ]
    }

    /// Every page, with and without an error.
    fn all_pages() -> Vec<(&'static str, String)> {
        let patient_scopes = scopes("openid fhirUser launch/patient patient/*.rs offline_access");
        let staff_scopes = scopes("openid fhirUser launch/patient user/*.cruds");
        let list = patients();
        let for_patient = Consent {
            clinic: "Riverside PT",
            app: "Home Exercises",
            person: "Ada Lovelace",
            scopes: &patient_scopes,
            patients: None,
            query: "",
        };
        let for_staff = Consent {
            clinic: "Riverside PT",
            app: "Clinic Portal",
            person: "Ann Therapist",
            scopes: &staff_scopes,
            patients: Some(&list),
            query: "ada",
        };
        let none: &[PatientChoice] = &[];
        let nobody = Consent {
            patients: Some(none),
            ..for_staff
        };
        let wrong = Some("The username or password is not right.");
        vec![
            (
                "sign in",
                sign_in("Riverside PT", "Home Exercises", &FORM, "", None),
            ),
            (
                "sign in, error",
                sign_in("Riverside PT", "Home Exercises", &FORM, "ada", wrong),
            ),
            (
                "code",
                redeem("Riverside PT", "Home Exercises", &FORM, None),
            ),
            (
                "code, error",
                redeem(
                    "Riverside PT",
                    "Home Exercises",
                    &FORM,
                    Some("That code has expired."),
                ),
            ),
            ("consent", consent(&for_patient, &FORM, None)),
            ("consent, staff", consent(&for_staff, &FORM, None)),
            (
                "consent, staff, error",
                consent(&for_staff, &FORM, Some("Choose a patient first.")),
            ),
            ("consent, no patient", consent(&nobody, &FORM, None)),
            (
                "error",
                error("This app is not known", "Ask the app's maker."),
            ),
        ]
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("Tom & Jerry's"), "Tom &amp; Jerry&#39;s");
        assert_eq!(
            escape("&amp;"),
            "&amp;amp;",
            "escaped once more, not left as is"
        );
        assert_eq!(escape("Zoë 😀 plain"), "Zoë 😀 plain");
    }

    #[test]
    fn every_page_is_a_complete_accessible_document() {
        for (name, html) in all_pages() {
            assert!(
                html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
                "{name}"
            );
            assert!(html.trim_end().ends_with("</html>"), "{name}");
            assert!(
                html.contains(
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                ),
                "{name}"
            );
            assert!(html.contains("<meta charset=\"utf-8\">"), "{name}");
            assert_eq!(html.matches("<title>").count(), 1, "{name}");
            assert!(
                !between(&html, "<title>", "</title>").trim().is_empty(),
                "{name}"
            );
            assert_eq!(html.matches("<h1>").count(), 1, "{name}: one h1");
            assert_eq!(html.matches("<h1").count(), 1, "{name}: one h1");
            assert_eq!(html.matches("<main>").count(), 1, "{name}");

            // one stylesheet of our own, nothing else loaded, no script, no inline style
            let links = tags(&html, "link");
            assert_eq!(links.len(), 1, "{name}");
            assert_eq!(attr(&links[0], "rel"), Some("stylesheet"));
            assert_eq!(attr(&links[0], "href"), Some("/auth/pages.css"));
            for banned in ["<script", "<style", " style=", " src=", "<img", "<iframe"] {
                assert!(!html.contains(banned), "{name} has {banned:?}");
            }
            for t in ["body", "form", "input", "button", "a", "p", "div", "label"] {
                for a in tags(&html, t) {
                    assert!(!a.iter().any(|(n, _)| n.starts_with("on")), "{name}: {a:?}");
                }
            }
            for a in tags(&html, "a") {
                let href = attr(&a, "href").expect("href");
                assert!(
                    href.starts_with('/') && !href.starts_with("//"),
                    "{name}: {href}"
                );
            }

            // ids unique; every visible input labelled, once; every description exists
            let ids: Vec<&str> = ["input", "p", "div", "fieldset", "label", "ul"]
                .iter()
                .flat_map(|t| tags(&html, t))
                .filter_map(|a| attr(&a, "id"))
                .collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "{name}: duplicate ids {ids:?}");
            let labels = tags(&html, "label");
            for i in tags(&html, "input") {
                if attr(&i, "type") == Some("hidden") {
                    assert!(attr(&i, "id").is_none(), "{name}");
                    continue;
                }
                let id = attr(&i, "id").unwrap_or_else(|| panic!("{name}: input without id"));
                assert!(attr(&i, "name").is_some(), "{name}: #{id} has no name");
                assert_eq!(
                    labels.iter().filter(|l| attr(l, "for") == Some(id)).count(),
                    1,
                    "{name}: #{id} needs one <label for>"
                );
            }
            for t in ["input", "fieldset", "div"] {
                for a in tags(&html, t) {
                    for id in attr(&a, "aria-describedby")
                        .unwrap_or("")
                        .split_whitespace()
                    {
                        assert!(ids.contains(&id), "{name}: describedby {id} missing");
                    }
                }
            }

            // every posted form carries the request and the token, hidden
            for form in html.split("<form method=\"post\"").skip(1) {
                let form = &form[..form.find("</form>").expect("closed form")];
                assert!(
                    form.contains(
                        "<input type=\"hidden\" name=\"request\" value=\"eyJhbGciOi.J9-x_y~z+/=\">"
                    ),
                    "{name}"
                );
                assert!(
                    form.contains("<input type=\"hidden\" name=\"csrf\" value=\"c5rf-t0ken\">"),
                    "{name}"
                );
            }
            assert_eq!(
                html.matches("<form").count(),
                html.matches("</form>").count(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_error_is_an_alert_that_the_inputs_name() {
        for (name, html) in all_pages() {
            let alerts = html.matches("role=\"alert\"").count();
            if !name.ends_with("error") || name == "error" {
                assert_eq!(alerts, 0, "{name}");
                assert!(!html.contains("aria-describedby=\"error\""), "{name}");
                assert!(!between(&html, "<title>", "</title>").starts_with("Error"));
                continue;
            }
            assert_eq!(alerts, 1, "{name}");
            let alert = tags(&html, "p")
                .into_iter()
                .find(|a| attr(a, "role") == Some("alert"))
                .expect("the alert");
            assert_eq!(attr(&alert, "id"), Some("error"), "{name}");
            assert!(
                between(&html, "<title>", "</title>").starts_with("Error: "),
                "{name}: the title says so"
            );
            let described: Vec<Vec<(&str, &str)>> = ["input", "fieldset"]
                .iter()
                .flat_map(|t| tags(&html, t))
                .filter(|a| {
                    !matches!(attr(a, "type"), Some("hidden" | "radio"))
                        && attr(a, "id") != Some("q")
                })
                .collect();
            assert!(!described.is_empty(), "{name}");
            for a in described {
                let by = attr(&a, "aria-describedby").unwrap_or("");
                assert!(by.split(' ').any(|id| id == "error"), "{name}: {a:?}");
            }
        }
        let html = sign_in(
            "C",
            "A",
            &FORM,
            "ada",
            Some("The username or password is not right."),
        );
        assert!(html.contains(
            "<p id=\"error\" class=\"error\" role=\"alert\">The username or password is not right.</p>"
        ));
        assert_eq!(
            attr(&input(&html, "username"), "aria-invalid"),
            Some("true")
        );
        assert_eq!(
            attr(&input(&html, "password"), "aria-invalid"),
            Some("true")
        );
    }

    #[test]
    fn the_sign_in_page_as_the_contract_says() {
        let html = sign_in("Riverside PT", "Home Exercises", &FORM, "ada", None);
        assert!(html.contains("<form method=\"post\" action=\"/auth/login\">"));
        assert!(
            html.contains("<input id=\"username\" name=\"username\" autocomplete=\"username\"")
        );
        assert!(html.contains(
            "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\""
        ));
        assert!(html.contains("<button type=\"submit\">Sign in</button>"));
        assert_eq!(attr(&input(&html, "username"), "value"), Some("ada"));
        assert_eq!(
            attr(&input(&html, "password"), "value"),
            None,
            "never filled"
        );
        assert!(html.contains(
            "<a href=\"/auth/redeem?request=eyJhbGciOi.J9-x_y~z%2B%2F%3D\">I have a code from my clinic</a>"
        ));
        assert!(html.contains("Home Exercises") && html.contains("Riverside PT"));
        let empty = sign_in("Riverside PT", "Home Exercises", &FORM, "", None);
        assert_eq!(attr(&input(&empty, "username"), "value"), None);
    }

    #[test]
    fn the_code_page_as_the_contract_says() {
        let html = redeem("Riverside PT", "Home Exercises", &FORM, None);
        assert!(html.contains("<form method=\"post\" action=\"/auth/redeem\">"));
        let expected = [
            ("code", None, "one-time-code"),
            ("birth_date", Some("date"), "bday"),
            ("username", None, "username"),
            ("password", Some("password"), "new-password"),
        ];
        for (id, kind, autocomplete) in expected {
            let a = input(&html, id);
            assert_eq!(attr(&a, "name"), Some(id));
            assert_eq!(attr(&a, "type"), kind, "{id}");
            assert_eq!(attr(&a, "autocomplete"), Some(autocomplete), "{id}");
        }
        let visible: Vec<_> = tags(&html, "input")
            .into_iter()
            .filter(|a| attr(a, "type") != Some("hidden"))
            .collect();
        assert_eq!(visible.len(), 4);
        assert!(html.contains("<button type=\"submit\">Create my account</button>"));
        // the hints are read with their inputs
        assert_eq!(
            attr(&input(&html, "birth_date"), "aria-describedby"),
            Some("birth_date-hint")
        );
        assert!(html.contains("id=\"birth_date-hint\""));
    }

    #[test]
    fn the_consent_page_of_a_patient() {
        let asked = scopes(
            "openid fhirUser launch/patient patient/Task.rs patient/Observation.write offline_access patient/Task.read",
        );
        let c = Consent {
            clinic: "Riverside PT",
            app: "Home Exercises",
            person: "Ada Lovelace",
            scopes: &asked,
            patients: None,
            query: "",
        };
        let html = consent(&c, &FORM, None);
        assert!(html.contains("<h1>Allow Home Exercises to use your account?</h1>"));
        assert!(html.contains("<strong>Ada Lovelace</strong>"));
        assert!(html.contains("<form method=\"post\" action=\"/auth/consent\">"));
        assert!(html.contains("<button name=\"decision\" value=\"allow\">Allow</button>"));
        assert!(html.contains("<button name=\"decision\" value=\"deny\">Deny</button>"));
        let list = between(&html, "<ul class=\"scopes\">", "</ul>");
        for words in [
            "<li>See your exercise sessions</li>",
            "<li>Add, change and delete your measurements and pain scores</li>",
            "<li>Stay signed in when you are not using the app</li>",
            "<li>Know who you are as a patient of the clinic</li>",
        ] {
            assert!(list.contains(words), "{words} in {list}");
        }
        assert_eq!(
            list.matches("<li>See your exercise sessions</li>").count(),
            1,
            "said once though asked twice"
        );
        assert_eq!(list.matches("<li>").count(), 6);
        assert!(!html.contains("type=\"radio\""));
        assert!(!html.contains("method=\"get\""));
        assert!(!html.contains("Choose the patient you work with"));

        let nothing = Consent { scopes: &[], ..c };
        let html = consent(&nothing, &FORM, None);
        assert!(!html.contains("<ul"));
        assert!(html.contains("asks only to know that you signed in"));
    }

    #[test]
    fn the_consent_page_of_a_staff_member_picks_the_patient() {
        let asked = scopes("openid fhirUser launch/patient user/*.cruds");
        let list = patients();
        let c = Consent {
            clinic: "Riverside PT",
            app: "Clinic Portal",
            person: "Ann Therapist",
            scopes: &asked,
            patients: Some(&list),
            query: "ada",
        };
        let html = consent(&c, &FORM, None);
        assert!(html.contains("<li>Choose the patient you work with</li>"));
        assert!(html.contains("<li>See, add, change and delete all the clinic&#39;s records</li>"));

        // the filter: a GET form of its own, before the consent form, with the request
        let filter = between(
            &html,
            "<form method=\"get\" action=\"/auth/consent\"",
            "</form>",
        );
        assert!(
            filter.contains(
                "<input type=\"hidden\" name=\"request\" value=\"eyJhbGciOi.J9-x_y~z+/=\">"
            )
        );
        assert!(!filter.contains("csrf"), "no token in a URL");
        let q = input(&html, "q");
        assert_eq!(attr(&q, "name"), Some("q"));
        assert_eq!(attr(&q, "value"), Some("ada"));
        assert!(html.find("method=\"get\"") < html.find("method=\"post\""));

        let post = between(
            &html,
            "<form method=\"post\" action=\"/auth/consent\">",
            "</form>",
        );
        let radios: Vec<_> = tags(post, "input")
            .into_iter()
            .filter(|a| attr(a, "type") == Some("radio"))
            .collect();
        assert_eq!(radios.len(), 2);
        for (r, id) in radios.iter().zip(["p-1", "p-2"]) {
            assert_eq!(attr(r, "name"), Some("patient"));
            assert_eq!(attr(r, "value"), Some(id));
            assert_eq!(attr(r, "checked"), None, "a deliberate choice");
        }
        assert!(post.contains("<label for=\"patient-0\">Ada Lovelace<span class=\"detail\">Born 1815-12-10</span></label>"));
        assert!(post.contains("<label for=\"patient-1\">Ada Lovelace</label>"));
        assert!(post.contains("<legend>"));
        assert!(post.contains("value=\"allow\">Allow</button>"));

        let none: &[PatientChoice] = &[];
        let html = consent(
            &Consent {
                patients: Some(none),
                ..c
            },
            &FORM,
            None,
        );
        assert!(html.contains("No patient matches \u{201c}ada\u{201d}."));
        let html = consent(
            &Consent {
                patients: Some(none),
                query: "",
                ..c
            },
            &FORM,
            None,
        );
        assert!(html.contains("There are no patients to choose from."));
    }

    #[test]
    fn every_value_is_escaped() {
        let evil = r#"<script>alert("x&'y")</script>"#;
        let safe = "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;";
        let form = Form {
            request: evil,
            csrf: evil,
        };
        let asked = vec![
            evil.to_string(),
            "patient/Observation.rs?code=<b>\"x'</b>".to_string(),
        ];
        let list = [PatientChoice {
            id: evil,
            name: evil,
            birth_date: Some(evil),
        }];
        let c = Consent {
            clinic: evil,
            app: evil,
            person: evil,
            scopes: &asked,
            patients: Some(&list),
            query: evil,
        };
        let pages = [
            sign_in(evil, evil, &form, evil, Some(evil)),
            redeem(evil, evil, &form, Some(evil)),
            consent(&c, &form, Some(evil)),
            consent(
                &Consent {
                    patients: Some(&[]),
                    ..c
                },
                &form,
                Some(evil),
            ),
            error(evil, evil),
        ];
        for html in &pages {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("x&'y"), "{html}");
            assert!(html.contains(safe), "{html}");
            for a in tags(html, "input").iter().chain(&tags(html, "a")) {
                for (_, v) in a {
                    assert!(!v.contains('<') && !v.contains('\''), "{a:?}");
                }
            }
        }
        assert!(pages[0].contains(&format!(
            "<input type=\"hidden\" name=\"request\" value=\"{safe}\">"
        )));
        assert!(pages[0].contains(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{safe}\">"
        )));
        assert!(pages[0].contains(
            "href=\"/auth/redeem?request=%3Cscript%3Ealert%28%22x%26%27y%22%29%3C%2Fscript%3E\""
        ));
        assert!(pages[2].contains(&format!("name=\"patient\" type=\"radio\" value=\"{safe}\"")));
        assert!(pages[2].contains(&format!("Use the permission \u{201c}{safe}\u{201d}")));
        assert!(pages[2].contains("(only where code is &lt;b&gt;&quot;x&#39;&lt;/b&gt;)"));
    }

    #[test]
    fn the_redeem_link_percent_encodes_the_request() {
        assert_eq!(
            redeem_link("abc.DEF-1_2~3"),
            "/auth/redeem?request=abc.DEF-1_2~3"
        );
        assert_eq!(
            redeem_link("a b&c=d/e?f#g+h%é"),
            "/auth/redeem?request=a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25%C3%A9"
        );
    }

    #[test]
    fn scopes_in_plain_words() {
        let cases = [
            ("patient/*.read", "See all your records"),
            (
                "patient/Observation.write",
                "Add, change and delete your measurements and pain scores",
            ),
            ("patient/Task.rs", "See your exercise sessions"),
            ("patient/Task.r", "See your exercise sessions"),
            ("patient/Task.u", "Change your exercise sessions"),
            ("patient/CarePlan.read", "See your exercise program"),
            ("patient/ServiceRequest.rs", "See your prescribed exercises"),
            ("patient/Patient.read", "See your details"),
            (
                "patient/Task.*",
                "See, add, change and delete your exercise sessions",
            ),
            (
                "user/*.cruds",
                "See, add, change and delete all the clinic's records",
            ),
            (
                "user/Task.cud",
                "Add, change and delete patients' exercise sessions",
            ),
            ("user/CarePlan.rs", "See patients' exercise programs"),
            ("system/*.rs", "See all the clinic's records"),
            (
                "patient/MedicationRequest.rs",
                "See your medication request records",
            ),
            (
                "user/AllergyIntolerance.read",
                "See the clinic's allergy intolerance records",
            ),
            (
                "patient/Observation.rs?category=vital-signs",
                "See your measurements and pain scores (only where category is vital-signs)",
            ),
            ("openid", "Confirm that it is you who signed in"),
            ("fhirUser", "Know which record at the clinic is yours"),
            ("profile", "See your name"),
            (
                "offline_access",
                "Stay signed in when you are not using the app",
            ),
            (
                "online_access",
                "Stay signed in while you are using the app",
            ),
            (
                "launch",
                "Start with the patient already chosen in the clinic's system",
            ),
            (
                "launch/patient",
                "Know who you are as a patient of the clinic",
            ),
            (
                ADMIN_SCOPE,
                "Manage the clinic's apps and see who used its records",
            ),
            // what the server does not read as a scope is named
            (
                "patient/Nothing.read",
                "Use the permission \u{201c}patient/Nothing.read\u{201d}",
            ),
            (
                "user/Task.sc",
                "Use the permission \u{201c}user/Task.sc\u{201d}",
            ),
            (
                "launch/team",
                "Use the permission \u{201c}launch/team\u{201d}",
            ),
        ];
        for (scope, words) in cases {
            assert_eq!(describe_scope(scope), words, "{scope}");
        }
        assert_eq!(
            describe_scope_for("launch/patient", Reader::Staff),
            "Choose the patient you work with"
        );
        assert_eq!(
            describe_scope_for("patient/Task.rs", Reader::Staff),
            describe_scope("patient/Task.rs")
        );
    }

    #[test]
    fn the_policy_names_the_apps_origin_only() {
        let base = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        assert_eq!(csp(None), base);
        let with = |source: &str| {
            base.replace(
                "form-action 'self'",
                &format!("form-action 'self' {source}"),
            )
        };
        assert_eq!(
            csp(Some("https://app.example")),
            with("https://app.example")
        );
        assert_eq!(
            csp(Some("https://app.example:8443/callback?x=1")),
            with("https://app.example:8443")
        );
        assert_eq!(
            csp(Some("http://localhost:3000/cb")),
            with("http://localhost:3000")
        );
        let idn = csp(Some("https://Ünï.example/"));
        assert!(
            idn.is_ascii() && idn.contains("form-action 'self' https://xn--"),
            "{idn}"
        );
        assert_eq!(
            csp(Some("com.example.app:/oauth")),
            with("com.example.app:")
        );
        for refused in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "not a url",
            "https://a.example; script-src *",
            "https://a.example;script-src",
            "https://*.example",
            "https://a.example,b.example",
            "https://a'b.example",
            "",
        ] {
            assert_eq!(csp(Some(refused)), base, "{refused}");
        }
    }

    /// WCAG 2.1 contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        fn luminance(hex: &str) -> f64 {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        }
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn the_stylesheet_is_readable_on_a_phone() {
        // text and its background, as the rules pair them
        let text = [
            ("#1b1f24", "#ffffff"), // body text in main, inputs
            ("#1b1f24", "#f4f6f8"), // body text outside main
            ("#4a5561", "#ffffff"), // hints, birth dates
            ("#0a58a8", "#ffffff"), // links, the secondary button
            ("#083f78", "#ffffff"), // links hovered
            ("#ffffff", "#0a58a8"), // the button
            ("#ffffff", "#083f78"), // the button hovered
            ("#083f78", "#eef4fb"), // the secondary button hovered
            ("#8f0016", "#fdeced"), // the error
        ];
        for (fg, bg) in text {
            assert!(
                STYLESHEET.contains(fg) && STYLESHEET.contains(bg),
                "{fg} {bg}"
            );
            let ratio = contrast(fg, bg);
            assert!(ratio >= 4.5, "{fg} on {bg}: {ratio:.2}");
        }
        // input borders and the focus outline against white (non-text, 3:1)
        for fg in ["#5b6672", "#b00020", "#1b1f24"] {
            assert!(STYLESHEET.contains(fg));
            assert!(contrast(fg, "#ffffff") >= 3.0, "{fg}");
        }
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);

        assert!(STYLESHEET.contains(":focus-visible { outline: 3px solid #1b1f24;"));
        assert!(
            STYLESHEET.contains("font-size: 1.0625rem;"),
            "17px body text"
        );
        assert!(STYLESHEET.contains("html { font-size: 100%;"));
        assert_eq!(
            STYLESHEET.matches("min-height: 2.75rem;").count(),
            4,
            "inputs, buttons, the code link and the patients' rows are 44px high"
        );
        assert!(STYLESHEET.contains("@media (min-width: 40rem)"));
        for banned in ["url(", "@import", "font-size: 0.", "px;\n  font-size"] {
            assert!(!STYLESHEET.contains(banned), "{banned}");
        }
        let opened = STYLESHEET.matches('{').count();
        assert_eq!(opened, STYLESHEET.matches('}').count(), "balanced braces");
    }
}
