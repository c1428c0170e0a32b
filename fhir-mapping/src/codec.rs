//! Parsing and rendering of FHIR resources: the only place that calls fhirbolt's
//! generic (de)serialisers. Every function here is non-generic, so that the large amount
//! of code those instantiate is compiled once, in this crate.

use fhirbolt::FhirReleases;
use fhirbolt::element::Element;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::{Map, Value};

use crate::error::MappingError;
use crate::fidelity;
use crate::locate;
use crate::outcome::{Issue, IssueType, Severity};
use crate::resource_types::is_resource_type;

/// A wire format of FHIR resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json",
            Format::Xml => "application/fhir+xml",
        }
    }
}

/// Limits applied while parsing untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Deepest nesting of objects/arrays (JSON) or elements (XML) accepted.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_depth: 64 }
    }
}

/// fhirbolt's generic element tree, typed by R4 metadata.
type R4Element = Element<{ FhirReleases::R4 }>;

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

/// A resource that passed structural validation against the R4 model, held as its
/// canonical JSON object (elements in FHIR order).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResource {
    pub(crate) resource_type: String,
    pub(crate) json: Map<String, Value>,
}

impl ParsedResource {
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    pub fn id(&self) -> Option<&str> {
        self.json.get("id").and_then(Value::as_str)
    }

    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// For the server's own additions (generated narrative and instructions). The
    /// resource type cannot change through it.
    pub fn json_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.json
    }

    /// Sets the logical id (kept in canonical position, after `resourceType`).
    pub fn set_id(&mut self, id: &str) {
        self.json.shift_remove("id");
        self.json
            .shift_insert(1, "id".into(), Value::String(id.into()));
    }

    /// Sets `meta.versionId` and `meta.lastUpdated`, keeping any other meta content.
    pub fn set_meta(&mut self, version_id: &str, last_updated: &str) {
        stamp_meta(&mut self.json, version_id, last_updated);
    }

    /// The canonical compact JSON bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serialising a map of JSON values cannot fail.
        serde_json::to_vec(&self.json).unwrap_or_default()
    }
}

/// Sets `meta.versionId` and `meta.lastUpdated` of resource JSON, meta's elements in
/// canonical order and `meta` after `id` (or `resourceType`).
pub fn stamp_meta(json: &mut Map<String, Value>, version_id: &str, last_updated: &str) {
    let mut meta = match json.shift_remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.shift_remove("versionId");
    meta.shift_remove("lastUpdated");
    let mut ordered = Map::new();
    // Meta elements in canonical order: id, extension, versionId, lastUpdated, source, ...
    for key in ["id", "extension"] {
        if let Some(v) = meta.shift_remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    ordered.insert("versionId".into(), Value::String(version_id.into()));
    ordered.insert("lastUpdated".into(), Value::String(last_updated.into()));
    ordered.extend(meta);
    let pos = if json.contains_key("id") { 2 } else { 1 };
    json.shift_insert(pos.min(json.len()), "meta".into(), Value::Object(ordered));
}

/// Parses and structurally validates a resource in the given format.
pub fn parse_resource(
    body: &[u8],
    format: Format,
    limits: &ParseLimits,
) -> Result<ParsedResource, MappingError> {
    // fhirbolt is not maintained any more and has panicked on hostile input (invalid
    // UTF-8 in an XML namespace): a panic while reading a document is a refusal of the
    // document, never a failure of the server.
    let parsed = std::panic::catch_unwind(|| match format {
        Format::Json => element_to_json(parse_json(body, limits)?),
        Format::Xml => parse_xml(body, limits),
    });
    parsed.unwrap_or_else(|_| {
        Err(MappingError::single(Issue::error(
            IssueType::Structure,
            "the document could not be read as a FHIR resource",
        )))
    })
}

fn element_to_json(element: R4Element) -> Result<ParsedResource, MappingError> {
    match fhirbolt::json::to_json_value(element, None) {
        Ok(Value::Object(json)) => {
            let resource_type = json
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Ok(ParsedResource {
                resource_type,
                json,
            })
        }
        Ok(_) => Err(MappingError::single(Issue::error(
            IssueType::Structure,
            "the resource is not a JSON object",
        ))),
        Err(e) => Err(MappingError::single(Issue::error(
            IssueType::Structure,
            format!("the resource cannot be represented: {e}"),
        ))),
    }
}

/// Puts the narratives of an XML body back as the client wrote them into the JSON
/// fhirbolt made of it (its XML reader trims their text and drops the root `div`'s
/// attributes).
fn source_narratives(json: &mut Map<String, Value>, body: &[u8]) {
    let divs = fidelity::xml_narratives(body);
    if divs.is_empty() {
        return;
    }
    let mut value = Value::Object(std::mem::take(json));
    fidelity::restore_json_narratives(&mut value, &divs);
    if let Value::Object(map) = value {
        *json = map;
    }
}

/// Checks JSON nesting depth, and that no object or array is empty (FHIR JSON has no
/// empty elements), without parsing: strings are skipped.
fn check_json_depth(body: &[u8], max_depth: usize) -> Result<(), MappingError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut prev = 0u8;
    let (mut line, mut col) = (1u64, 0u64);
    for &b in body {
        col += 1;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                prev = b;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(MappingError::single(
                        Issue::error(
                            IssueType::TooCostly,
                            format!("the document is nested deeper than {max_depth} levels"),
                        )
                        .with_position(line, col),
                    ));
                }
            }
            b'}' | b']' => {
                if (b == b'}' && prev == b'{') || (b == b']' && prev == b'[') {
                    return Err(MappingError::single(
                        Issue::error(
                            IssueType::Structure,
                            "empty objects and arrays are not allowed in FHIR JSON: leave the element out",
                        )
                        .with_position(line, col),
                    ));
                }
                depth = depth.saturating_sub(1)
            }
            b'\n' => {
                line += 1;
                col = 0;
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
    }
    Ok(())
}

fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// JSON: every value checked against the R4 definitions (`crate::validate`), then read
/// as elements (strict: unknown elements refused), whose serialisation gives the
/// canonical JSON (elements in FHIR order). fhirbolt's typed R4 structs are not used:
/// the validator checks all they did (names, cardinality, types, required elements,
/// choice types) and more, with locations, and their generic code was most of the
/// crate's build time.
fn parse_json(body: &[u8], limits: &ParseLimits) -> Result<R4Element, MappingError> {
    check_json_depth(body, limits.max_depth)?;
    let document: Value = serde_json::from_slice(body).map_err(|e| json_error(body, &e))?;
    check_values(&document)?;
    match fhirbolt::json::from_slice::<R4Element>(body, strict()) {
        Ok(element) => Ok(element),
        // The element reader needs `resourceType` first (in every resource, contained
        // ones included), which JSON does not promise: put it first and read again.
        Err(_) => {
            let mut value = document;
            resource_type_first(&mut value);
            let bytes = serde_json::to_vec(&value).map_err(|e| json_error(body, &e))?;
            fhirbolt::json::from_slice::<R4Element>(&bytes, strict())
                .map_err(|e| json_error(&bytes, &e))
        }
    }
}

/// Every element's value checked against the R4 definitions (see [`crate::validate`]):
/// all problems at once.
fn check_values(document: &Value) -> Result<(), MappingError> {
    let issues = crate::validate::validate(document);
    if issues.iter().any(|i| i.severity == Severity::Error) {
        Err(MappingError { issues })
    } else {
        Ok(())
    }
}

/// Moves `resourceType` to the front of every object that has one.
fn resource_type_first(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(t) = map.shift_remove("resourceType") {
                map.shift_insert(0, "resourceType".into(), t);
            }
            map.values_mut().for_each(resource_type_first);
        }
        Value::Array(items) => items.iter_mut().for_each(resource_type_first),
        _ => {}
    }
}

fn json_error(body: &[u8], e: &serde_json::Error) -> MappingError {
    use serde_json::error::Category;
    let (line, column) = (e.line() as u64, e.column() as u64);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => MappingError::single(
            Issue::error(
                IssueType::Structure,
                format!("malformed JSON: {}", serde_message(e)),
            )
            .with_position(line, column),
        ),
        Category::Data => {
            // Name the resource type problem precisely when that is the problem.
            let value: Option<Value> = serde_json::from_slice(body).ok();
            let resource_type = value
                .as_ref()
                .and_then(|v| v.get("resourceType"))
                .and_then(Value::as_str)
                .map(str::to_string);
            match (value.as_ref(), resource_type) {
                (Some(v), _) if !v.is_object() => MappingError::single(Issue::error(
                    IssueType::Structure,
                    "a resource must be a JSON object",
                )),
                (_, None) => MappingError::single(
                    Issue::error(IssueType::Required, "the resource has no `resourceType`")
                        .at("resourceType"),
                ),
                (_, Some(t)) if !is_resource_type(&t) => MappingError::single(
                    Issue::error(
                        IssueType::NotSupported,
                        format!("`{t}` is not an R4 resource type"),
                    )
                    .at("resourceType"),
                ),
                (Some(doc), Some(t)) => {
                    let message = serde_message(e);
                    let diagnostics = if message == "ParseBoolError" {
                        "invalid boolean value (expected true or false)".to_string()
                    } else {
                        message.clone()
                    };
                    let mut issue = Issue::error(IssueType::Structure, diagnostics);
                    if line > 0 {
                        issue = issue.with_position(line, column);
                    }
                    if let Some(path) = locate::locate(doc, &t, &message) {
                        issue = issue.at(path);
                    }
                    MappingError::single(issue)
                }
                (None, Some(_)) => {
                    MappingError::single(Issue::error(IssueType::Structure, serde_message(e)))
                }
            }
        }
    }
}

/// Checks XML well-formedness and nesting depth, with the position of the first problem.
fn check_xml(body: &[u8], max_depth: usize) -> Result<(), MappingError> {
    use quick_xml::events::Event;
    if let Err(e) = std::str::from_utf8(body) {
        let (line, col) = line_col(body, e.valid_up_to());
        return Err(MappingError::single(
            Issue::error(IssueType::Structure, "the document is not valid UTF-8")
                .with_position(line, col),
        ));
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position() as usize;
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > max_depth {
                    let (line, col) = line_col(body, position);
                    return Err(MappingError::single(
                        Issue::error(
                            IssueType::TooCostly,
                            format!("the document is nested deeper than {max_depth} levels"),
                        )
                        .with_position(line, col),
                    ));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::DocType(_)) => {
                let (line, col) = line_col(body, position);
                return Err(MappingError::single(
                    Issue::error(IssueType::Security, "DOCTYPE declarations are not accepted")
                        .with_position(line, col),
                ));
            }
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                let (line, col) = line_col(body, reader.error_position() as usize);
                return Err(MappingError::single(
                    Issue::error(IssueType::Structure, format!("malformed XML: {e}"))
                        .with_position(line, col),
                ));
            }
        }
        buf.clear();
    }
}

fn line_col(body: &[u8], offset: usize) -> (u64, u64) {
    let upto = &body[..offset.min(body.len())];
    let line = upto.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let col = match upto.iter().rposition(|b| *b == b'\n') {
        Some(nl) => (upto.len() - nl) as u64,
        None => upto.len() as u64 + 1,
    };
    (line, col)
}

/// XML is read as elements (fhirbolt's tree typed by FHIR metadata); their JSON, with the
/// narratives as the client wrote them, is checked by the same validator as any JSON body
/// and is the resource kept.
fn parse_xml(body: &[u8], limits: &ParseLimits) -> Result<ParsedResource, MappingError> {
    check_xml(body, limits.max_depth)?;
    let element = fhirbolt::xml::from_slice::<R4Element>(body, strict()).map_err(|e| {
        let text = e.to_string();
        let code = if text.contains("unknown") {
            IssueType::Structure
        } else {
            IssueType::Invalid
        };
        MappingError::single(Issue::error(code, format!("invalid FHIR XML: {text}")))
    })?;
    let json = fhirbolt::json::to_vec(&element, None).map_err(|e| {
        MappingError::single(Issue::error(
            IssueType::Invalid,
            format!("invalid FHIR XML: {e}"),
        ))
    })?;
    let mut document: Value = serde_json::from_slice(&json).map_err(|e| json_error(&json, &e))?;
    // What is checked is what is kept: the narratives as the client wrote them.
    if let Value::Object(map) = &mut document {
        source_narratives(map, body);
    }
    check_values(&document)?;
    match document {
        Value::Object(json) => Ok(ParsedResource {
            resource_type: json
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            json,
        }),
        _ => Err(MappingError::single(Issue::error(
            IssueType::Structure,
            "the resource is not a JSON object",
        ))),
    }
}

/// Reads canonical JSON that this server wrote itself (stored resources) as elements.
fn parse_stored(json: &[u8]) -> Result<R4Element, MappingError> {
    fhirbolt::json::from_slice::<R4Element>(json, strict()).map_err(|e| {
        MappingError::single(Issue::error(
            IssueType::Exception,
            format!("stored resource cannot be read: {}", serde_message(&e)),
        ))
    })
}

/// Renders JSON resource bytes (stored canonical JSON, or any JSON this server built)
/// in the requested format.
pub fn render(json: &[u8], format: Format, pretty: bool) -> Result<Vec<u8>, MappingError> {
    match format {
        Format::Json if !pretty => Ok(json.to_vec()),
        Format::Json => {
            let value: Value = serde_json::from_slice(json).map_err(|e| {
                MappingError::single(Issue::error(IssueType::Exception, e.to_string()))
            })?;
            serde_json::to_vec_pretty(&value).map_err(|e| {
                MappingError::single(Issue::error(IssueType::Exception, e.to_string()))
            })
        }
        Format::Xml => {
            let element = parse_stored(json)?;
            // fhirbolt writes the XML declaration itself.
            let xml = fhirbolt::xml::to_vec(&element, None).map_err(|e| {
                MappingError::single(Issue::error(IssueType::Exception, e.to_string()))
            })?;
            // Its writer trims and indents the text of narratives: write them as stored.
            let value: Value = serde_json::from_slice(json).map_err(|e| {
                MappingError::single(Issue::error(IssueType::Exception, e.to_string()))
            })?;
            Ok(fidelity::restore_xml_narratives(
                xml,
                &fidelity::json_narratives(&value),
            ))
        }
    }
}

/// Renders a JSON value (an OperationOutcome, a Bundle, a CapabilityStatement) in the
/// requested format.
pub fn render_value(value: &Value, format: Format, pretty: bool) -> Result<Vec<u8>, MappingError> {
    match format {
        Format::Json if pretty => serde_json::to_vec_pretty(value)
            .map_err(|e| MappingError::single(Issue::error(IssueType::Exception, e.to_string()))),
        _ => {
            let bytes = serde_json::to_vec(value).map_err(|e| {
                MappingError::single(Issue::error(IssueType::Exception, e.to_string()))
            })?;
            render(&bytes, format, pretty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ParsedResource, MappingError> {
        parse_resource(s.as_bytes(), Format::Json, &ParseLimits::default())
    }

    #[test]
    fn canonical_json_and_meta() {
        let mut r = parse(
            r#"{"gender":"female","resourceType":"Patient","meta":{"source":"x","versionId":"9"},"contained":[{"active":true,"resourceType":"Patient"}]}"#,
        )
        .expect("valid");
        assert_eq!(r.resource_type(), "Patient");
        r.set_id("p1");
        r.set_meta("1", "2026-01-01T00:00:00.000Z");
        let s = String::from_utf8(r.to_json_bytes()).expect("utf8");
        assert_eq!(
            s,
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z","source":"x"},"contained":[{"resourceType":"Patient","active":true}],"gender":"female"}"#
        );
    }

    #[test]
    fn unknown_element_is_located() {
        let err = parse(
            "{\"resourceType\":\"Patient\",\n\"name\":[{\"family\":\"A\",\"nickname\":\"B\"}]}",
        )
        .expect_err("invalid");
        let issue = &err.issues[0];
        assert_eq!(
            issue.expression.as_deref(),
            Some("Patient.name[0].nickname")
        );
    }

    #[test]
    fn wrong_value_type_is_located() {
        let err = parse(r#"{"resourceType":"Patient","birthDate":1990}"#).expect_err("invalid");
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Patient.birthDate")
        );
        let err = parse(r#"{"resourceType":"Patient","active":"yes"}"#).expect_err("invalid");
        assert!(err.issues[0].diagnostics.contains("true or false"));
    }

    #[test]
    fn malformed_json_has_position() {
        let err =
            parse("{\"resourceType\":\"Patient\",\n  \"active\": tru }").expect_err("invalid");
        assert!(err.issues[0].diagnostics.starts_with("malformed JSON"));
        assert_eq!(err.issues[0].position.map(|p| p.0), Some(2));
    }

    #[test]
    fn unknown_type_and_missing_type() {
        let err = parse(r#"{"resourceType":"Foo"}"#).expect_err("invalid");
        assert_eq!(err.issues[0].code, IssueType::NotSupported);
        let err = parse(r#"{"id":"x"}"#).expect_err("invalid");
        assert_eq!(err.issues[0].code, IssueType::Required);
        let err = parse(r#"[1]"#).expect_err("invalid");
        assert_eq!(err.issues[0].code, IssueType::Structure);
    }

    #[test]
    fn empty_elements_are_refused() {
        for doc in [
            r#"{"resourceType":"Patient","meta":{}}"#,
            r#"{"resourceType":"Patient","name":[ ]}"#,
            "{\"resourceType\":\"Patient\",\n\"name\":[{\n}]}",
        ] {
            let err = parse(doc).expect_err("empty element");
            assert_eq!(err.issues[0].code, IssueType::Structure, "{doc}");
            assert!(err.issues[0].position.is_some());
        }
        // braces inside strings are text
        assert!(parse(r#"{"resourceType":"Patient","name":[{"text":"{} []"}]}"#).is_ok());
    }

    #[test]
    fn depth_limit() {
        let deep = format!(
            r#"{{"resourceType":"Basic","extension":[{}]}}"#,
            "{\"url\":\"x\",\"extension\":[".repeat(40) + &"]}".repeat(40)
        );
        let err = parse(&deep).expect_err("too deep");
        assert_eq!(err.issues[0].code, IssueType::TooCostly);
    }

    #[test]
    fn decimals_keep_precision_and_xml_round_trips() {
        let r = parse(r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":12.500,"unit":"kg"}}"#)
            .expect("valid");
        let json = r.to_json_bytes();
        assert!(String::from_utf8_lossy(&json).contains("12.500"));
        let xml = render(&json, Format::Xml, false).expect("xml");
        let text = String::from_utf8_lossy(&xml);
        assert!(
            text.contains("<Observation xmlns=\"http://hl7.org/fhir\">"),
            "{text}"
        );
        assert_eq!(text.matches("<?xml").count(), 1, "{text}");
        assert!(text.contains("value=\"12.500\""));
        let back = parse_resource(&xml, Format::Xml, &ParseLimits::default()).expect("xml parses");
        assert_eq!(back, r);
    }

    #[test]
    fn narratives_keep_their_whitespace_through_xml() {
        let div =
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><b>Name</b> <i>Peter</i> Chalmers</div>"#;
        let xml = format!(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{div}</text></Patient>"#
        );
        let r =
            parse_resource(xml.as_bytes(), Format::Xml, &ParseLimits::default()).expect("valid");
        assert_eq!(r.json()["text"]["div"], div);
        let out = render(&r.to_json_bytes(), Format::Xml, false).expect("xml");
        assert!(String::from_utf8_lossy(&out).contains(div));
        // the root's attributes come back, and are checked
        let xml = xml.replace("xhtml\">", "xhtml\" onclick=\"x()\">");
        assert!(parse_resource(xml.as_bytes(), Format::Xml, &ParseLimits::default()).is_err());
    }

    #[test]
    fn malformed_xml_has_position() {
        let err = parse_resource(
            b"<Patient xmlns=\"http://hl7.org/fhir\">\n<active value=\"true\">\n</Patient>",
            Format::Xml,
            &ParseLimits::default(),
        )
        .expect_err("invalid");
        assert!(
            err.issues[0].diagnostics.starts_with("malformed XML"),
            "{:?}",
            err
        );
        assert!(err.issues[0].position.is_some());
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    const CAREPLAN: &[u8] = include_bytes!("../tests/fixtures/careplan-hep.json");

    #[test]
    fn hep_careplan_round_trips_through_json_and_xml() {
        let limits = ParseLimits::default();
        let parsed = parse_resource(CAREPLAN, Format::Json, &limits).expect("fixture is valid");
        let json = parsed.to_json_bytes();
        let again = parse_resource(&json, Format::Json, &limits).expect("canonical JSON parses");
        assert_eq!(again, parsed);
        let xml = render(&json, Format::Xml, false).expect("renders as XML");
        let from_xml = parse_resource(&xml, Format::Xml, &limits).expect("XML parses");
        assert_eq!(from_xml, parsed);
        // what the input said is what is stored: same JSON value
        let input: Value = serde_json::from_slice(CAREPLAN).expect("json");
        let stored: Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(input, stored);
        assert!(String::from_utf8_lossy(&json).contains("\"valueDecimal\":0.50"));
    }
}
