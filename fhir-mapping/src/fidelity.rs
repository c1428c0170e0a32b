//! Keeping what a client sent through fhirbolt: narratives and decimal texts.
//!
//! fhirbolt's XML reader and writer trim the text inside a narrative (`<b>Name</b>
//! <i>Peter</i> Chalmers` becomes `<b>Name</b><i>Peter</i>Chalmers`), drop comments and
//! the attributes of the root `div` other than its namespace (`lang`, `class`, ...), and
//! its writer indents the narrative's elements. The functions here put the narratives
//! back as they were written, by matching them in document order:
//!
//! - XML in: [`xml_narratives`] of the body, put into fhirbolt's JSON by
//!   [`restore_json_narratives`];
//! - XML out: [`json_narratives`] of the resource, put into fhirbolt's XML by
//!   [`restore_xml_narratives`].
//!
//! A narrative is only replaced by a text that is the same narrative (same elements,
//! attributes and characters once whitespace and comments are left out), so a
//! difference in order between the two documents can never move a narrative to
//! another resource.
//!
//! Decimals are kept as written (`12.500`, `0.80`, `-0`) but for one spelling: the
//! JSON reader (serde_json, before fhirbolt) writes every exponent as a signed `e`
//! (`1E-22` is read as `1e-22`, `1.5e3` as `1.5e+3`) and no JSON value can hold another
//! spelling, so those texts change; their values and digits do not.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use serde_json::Value;

const XHTML: &[u8] = b"http://www.w3.org/1999/xhtml";

/// The narratives (`div` elements of the XHTML namespace that are not inside another
/// XHTML element) of an XML document, as their exact source text (from `<div` to the
/// matching `</div>` inclusive), in document order.
///
/// Line ends are those an XML reader sees (`\r\n` and `\r` read as `\n`). A document
/// that is not well-formed UTF-8 XML has no narratives. A narrative that relies on a
/// namespace declared outside it (`<h:div>` with `xmlns:h` on the root) is returned as
/// written; [`restore_json_narratives`] leaves such a narrative as fhirbolt read it.
pub(crate) fn xml_narratives(xml: &[u8]) -> Vec<String> {
    let Some(ranges) = narrative_ranges(xml) else {
        return Vec::new();
    };
    let mut divs = Vec::with_capacity(ranges.len());
    for range in ranges {
        match std::str::from_utf8(&xml[range]) {
            Ok(text) => divs.push(xml_line_ends(text)),
            Err(_) => return Vec::new(),
        }
    }
    divs
}

/// The `div` strings of every Narrative in a resource's JSON, in document order
/// (the order in which an XML rendering of the same resource writes them: FHIR's
/// canonical element order, contained resources and Bundle entries included). A
/// Narrative is the value of a `text` key whose object has a `div` string: `text` is a
/// plain string in many types (CodeableConcept.text, Annotation.text, ...), and those
/// are not narratives.
pub(crate) fn json_narratives(json: &serde_json::Value) -> Vec<&str> {
    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if key == "text"
                        && let Some(div) = v.get("div").and_then(Value::as_str)
                    {
                        out.push(div);
                    } else {
                        walk(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out
}

/// The narratives' `div` strings of a resource's JSON, for replacing, in the order of
/// [`json_narratives`].
fn json_narratives_mut(json: &mut Value) -> Vec<&mut String> {
    fn walk<'a>(value: &'a mut Value, out: &mut Vec<&'a mut String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let is_narrative = key == "text" && v.get("div").is_some_and(Value::is_string);
                    if is_narrative {
                        if let Some(Value::String(div)) = v.get_mut("div") {
                            out.push(div);
                        }
                    } else {
                        walk(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out
}

/// Puts `divs` (from `xml_narratives` of the XML a resource was read from) in place of
/// the narratives of `json` (the JSON fhirbolt made from that XML), in order. When the
/// counts differ, changes nothing and returns false.
///
/// Each narrative is replaced only when its source text stands alone (every element in
/// the XHTML namespace by declarations inside the narrative itself, as FHIR JSON
/// requires) and is the same narrative as fhirbolt's (see the module documentation);
/// otherwise that one keeps fhirbolt's text. Returns true when every narrative now
/// holds its source text.
pub(crate) fn restore_json_narratives(json: &mut serde_json::Value, divs: &[String]) -> bool {
    let mut targets = json_narratives_mut(json);
    if targets.len() != divs.len() {
        return false;
    }
    let mut all = true;
    for (target, div) in targets.iter_mut().zip(divs) {
        if **target == *div {
            continue;
        }
        if stands_alone(div) && same_narrative(target, div) {
            **target = div.clone();
        } else {
            all = false;
        }
    }
    all
}

/// Puts `divs` (the resource's JSON narratives) in place of the narratives of `xml`
/// (fhirbolt's XML rendering of that JSON), in order; returns the new XML. When the
/// counts differ, returns the XML unchanged.
///
/// A JSON narrative goes in as written (it is XHTML) when it is a well-formed `div` of
/// the XHTML namespace on its own; one that is not keeps fhirbolt's rendering.
pub(crate) fn restore_xml_narratives(xml: Vec<u8>, divs: &[&str]) -> Vec<u8> {
    let Some(ranges) = narrative_ranges(&xml) else {
        return xml;
    };
    if ranges.len() != divs.len() {
        return xml;
    }
    let mut out = Vec::with_capacity(xml.len());
    let mut done = 0;
    for (range, div) in ranges.into_iter().zip(divs) {
        let div = div.trim();
        if !stands_alone(div) {
            continue;
        }
        out.extend_from_slice(&xml[done..range.start]);
        out.extend_from_slice(div.as_bytes());
        done = range.end;
    }
    out.extend_from_slice(&xml[done..]);
    out
}

/// The byte ranges of the narratives of an XML document (see [`xml_narratives`]);
/// None when the document is not well-formed.
fn narrative_ranges(xml: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut reader = quick_xml::NsReader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut ranges = Vec::new();
    // The XHTML element being read (start offset, depth, whether it is a narrative).
    let mut region: Option<(usize, usize, bool)> = None;
    let mut buf = Vec::new();
    loop {
        let start = usize::try_from(reader.buffer_position()).ok()?;
        let (ns, event) = reader.read_resolved_event_into(&mut buf).ok()?;
        let is_xhtml = ns == ResolveResult::Bound(Namespace(XHTML));
        match event {
            Event::Start(e) => match &mut region {
                Some((_, depth, _)) => *depth += 1,
                None if is_xhtml => {
                    region = Some((start, 1, e.local_name().as_ref() == b"div"));
                }
                None => {}
            },
            Event::End(_) => {
                if let Some((from, depth, is_div)) = &mut region {
                    *depth -= 1;
                    if *depth == 0 {
                        if *is_div {
                            ranges.push(*from..usize::try_from(reader.buffer_position()).ok()?);
                        }
                        region = None;
                    }
                }
            }
            Event::Empty(e)
                if region.is_none() && is_xhtml && e.local_name().as_ref() == b"div" =>
            {
                ranges.push(start..usize::try_from(reader.buffer_position()).ok()?);
            }
            Event::Eof => return Some(ranges),
            _ => {}
        }
        buf.clear();
    }
}

/// Text with XML's line ends: `\r\n` and a lone `\r` are `\n`.
fn xml_line_ends(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    }
}

/// Whether `div` is, on its own, one well-formed `div` element of the XHTML namespace
/// whose elements are all in that namespace and whose prefixes are all declared
/// inside it, with nothing but whitespace around it.
fn stands_alone(div: &str) -> bool {
    let mut reader = quick_xml::NsReader::from_str(div);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let Ok((ns, event)) = reader.read_resolved_event() else {
            return false;
        };
        let element = match &event {
            Event::Start(e) | Event::Empty(e) => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = element {
            if ns != ResolveResult::Bound(Namespace(XHTML)) {
                return false;
            }
            if depth == 0 {
                roots += 1;
                if roots > 1 || e.local_name().as_ref() != b"div" {
                    return false;
                }
            }
            for attribute in e.attributes() {
                let Ok(attribute) = attribute else {
                    return false;
                };
                if let (ResolveResult::Unknown(_), _) = reader.resolve_attribute(attribute.key) {
                    return false;
                }
            }
        }
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Event::Text(t) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return false;
            }
            Event::CData(_) | Event::GeneralRef(_) if depth == 0 => return false,
            Event::Decl(_) | Event::DocType(_) | Event::PI(_) => return false,
            Event::Eof => return roots == 1 && depth == 0,
            _ => {}
        }
    }
}

/// Whether two narratives are the same but for what fhirbolt's reader and writer
/// change: whitespace, comments, and the root element's attributes.
fn same_narrative(a: &str, b: &str) -> bool {
    matches!((skeleton(a), skeleton(b)), (Some(x), Some(y)) if x == y)
}

/// A narrative's elements (with their attributes as written), character data and
/// references, without the root element, comments and any whitespace.
fn skeleton(div: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(div);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                if depth > 0 {
                    out.push(b'<');
                    out.extend_from_slice(&e);
                    out.push(b'>');
                }
                depth += 1;
            }
            Event::End(e) => {
                depth = depth.checked_sub(1)?;
                if depth > 0 {
                    out.extend_from_slice(b"</");
                    out.extend_from_slice(e.name().as_ref());
                    out.push(b'>');
                }
            }
            Event::Empty(e) if depth > 0 => {
                out.push(b'<');
                out.extend_from_slice(&e);
                out.extend_from_slice(b"/>");
            }
            Event::Text(t) => out.extend_from_slice(&t),
            Event::CData(t) => {
                out.extend_from_slice(b"<![CDATA[");
                out.extend_from_slice(&t);
                out.extend_from_slice(b"]]>");
            }
            Event::GeneralRef(r) => {
                out.push(b'&');
                out.extend_from_slice(&r);
                out.push(b';');
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out.retain(|b| !b.is_ascii_whitespace());
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Format, ParseLimits, ParsedResource, parse_resource, render};

    type R4Element = fhirbolt::element::Element<{ fhirbolt::FhirReleases::R4 }>;

    const PETER: &str =
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><b>Name</b> <i>Peter</i> Chalmers</div>"#;

    fn patient_xml() -> String {
        format!(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{PETER}</text></Patient>"#
        )
    }

    fn parse_xml(xml: &str) -> ParsedResource {
        parse_resource(xml.as_bytes(), Format::Xml, &ParseLimits::default()).expect("valid XML")
    }

    fn parse_json(json: &str) -> ParsedResource {
        parse_resource(json.as_bytes(), Format::Json, &ParseLimits::default()).expect("valid JSON")
    }

    fn value(r: &ParsedResource) -> Value {
        Value::Object(r.json().clone())
    }

    /// The JSON fhirbolt's XML reader makes of a document.
    fn fhirbolt_json(xml: &str) -> Value {
        let element = fhirbolt::xml::from_slice::<R4Element>(xml.as_bytes(), None).expect("xml");
        fhirbolt::json::to_json_value(element, None).expect("json")
    }

    /// The XML fhirbolt's writer makes of a resource's JSON.
    fn fhirbolt_xml(json: &Value) -> Vec<u8> {
        let bytes = serde_json::to_vec(json).expect("json");
        let element = fhirbolt::json::from_slice::<R4Element>(&bytes, None).expect("json");
        fhirbolt::xml::to_vec(&element, None).expect("xml")
    }

    fn errors(json: &Value) -> Vec<String> {
        crate::validate::validate(json)
            .into_iter()
            .filter(|i| i.severity == crate::outcome::Severity::Error)
            .map(|i| i.diagnostics)
            .collect()
    }

    fn bundle_xml() -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <type value="collection"/>
  <entry>
    <fullUrl value="urn:uuid:1"/>
    <resource>
      <Patient>
        <text>
          <status value="generated"/>
          {PETER}
        </text>
        <contained>
          <Practitioner>
            <id value="pr"/>
            <text>
              <status value="generated"/>
              <div xmlns="http://www.w3.org/1999/xhtml" lang="en"><p>Dr <b>Adam</b> <i>Careful</i></p><!-- seen --></div>
            </text>
          </Practitioner>
        </contained>
        <name><text value="Peter Chalmers"/></name>
      </Patient>
    </resource>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:2"/>
    <resource>
      <Observation>
        <text>
          <status value="generated"/>
          <div xmlns="http://www.w3.org/1999/xhtml">Weight <b>72</b> kg &amp; <span>rising</span></div>
        </text>
        <status value="final"/>
        <code><text value="weight"/></code>
      </Observation>
    </resource>
  </entry>
</Bundle>"#
        )
    }

    /// What fhirbolt does to a narrative, measured: its reader trims text (whitespace
    /// between inline elements is lost), drops comments and the root's attributes; its
    /// writer trims text too and indents the elements.
    #[test]
    fn fhirbolt_changes_narratives_both_ways() {
        let read = fhirbolt_json(&patient_xml());
        assert_eq!(
            json_narratives(&read),
            [r#"<div xmlns="http://www.w3.org/1999/xhtml"><b>Name</b><i>Peter</i>Chalmers</div>"#]
        );
        let bundle = fhirbolt_json(&bundle_xml());
        assert_eq!(
            json_narratives(&bundle)[1],
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Dr<b>Adam</b><i>Careful</i></p></div>"#
        );
        let json = serde_json::json!({"resourceType": "Patient",
            "text": {"status": "generated", "div": PETER}});
        let written = String::from_utf8(fhirbolt_xml(&json)).expect("utf8");
        assert!(
            written.contains("<b>Name</b>\n      <i>Peter</i>Chalmers</div>"),
            "{written}"
        );
    }

    #[test]
    fn peter_chalmers_end_to_end() {
        let xml = patient_xml();
        let divs = xml_narratives(xml.as_bytes());
        assert_eq!(divs, [PETER]);

        // reading: fhirbolt's JSON, then the narratives as sent
        let mut json = fhirbolt_json(&xml);
        assert!(restore_json_narratives(&mut json, &divs));
        assert_eq!(json_narratives(&json), [PETER]);
        assert_eq!(errors(&json), Vec::<String>::new());
        // writing: fhirbolt's XML, then the narratives as stored
        let written = restore_xml_narratives(fhirbolt_xml(&json), &json_narratives(&json));
        let text = String::from_utf8(written.clone()).expect("utf8");
        assert!(text.contains(PETER), "{text}");
        assert_eq!(xml_narratives(&written), [PETER]);

        // the same through the codec (restoring what is already restored changes nothing)
        let mut parsed = value(&parse_xml(&xml));
        assert!(restore_json_narratives(&mut parsed, &divs));
        assert_eq!(parsed, json);
        let bytes = serde_json::to_vec(&parsed).expect("json");
        let rendered = render(&bytes, Format::Xml, false).expect("xml");
        let rendered = restore_xml_narratives(rendered, &json_narratives(&parsed));
        assert_eq!(rendered, written);
        let mut again = value(&parse_xml(&String::from_utf8(rendered).expect("utf8")));
        assert!(restore_json_narratives(
            &mut again,
            &xml_narratives(&written)
        ));
        assert_eq!(again, json);
    }

    #[test]
    fn bundle_entries_and_contained_resources() {
        let xml = bundle_xml();
        let divs = xml_narratives(xml.as_bytes());
        assert_eq!(divs.len(), 3);
        assert_eq!(divs[0], PETER);
        assert!(
            divs[1].starts_with(r#"<div xmlns="http://www.w3.org/1999/xhtml" lang="en"><p>Dr"#)
        );
        assert!(divs[1].ends_with("<!-- seen --></div>"));
        assert!(divs[2].contains("kg &amp; <span>"));

        let mut json = fhirbolt_json(&xml);
        assert!(restore_json_narratives(&mut json, &divs));
        assert_eq!(json_narratives(&json), divs);
        assert_eq!(errors(&json), Vec::<String>::new());

        let written = restore_xml_narratives(fhirbolt_xml(&json), &json_narratives(&json));
        assert_eq!(xml_narratives(&written), divs);
        let mut parsed = value(&parse_xml(&String::from_utf8(written).expect("utf8")));
        assert!(restore_json_narratives(&mut parsed, &divs));
        assert_eq!(parsed, json);
    }

    /// fhirbolt drops the root `div`'s attributes, so the narrative checks must see the
    /// restored text: an event handler on the root comes back with it.
    #[test]
    fn restored_narratives_are_what_must_be_checked() {
        let xml = r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml" onclick="steal()"><b>Name</b> Peter</div></text></Patient>"#;
        let mut json = fhirbolt_json(xml);
        assert_eq!(errors(&json), Vec::<String>::new());
        assert!(restore_json_narratives(
            &mut json,
            &xml_narratives(xml.as_bytes())
        ));
        assert_eq!(errors(&json).len(), 1, "{json}");
    }

    #[test]
    fn only_narratives_count_in_json() {
        let json: Value = serde_json::from_str(
            r#"{"resourceType":"Observation","text":{"status":"generated","div":"<div>a</div>"},
                "code":{"text":"weight"},"note":[{"text":"n"}],
                "extension":[{"url":"u","valueString":"x"}],
                "contained":[{"resourceType":"Patient","text":{"status":"empty","div":"<div>b</div>"}}]}"#,
        )
        .expect("json");
        assert_eq!(json_narratives(&json), ["<div>a</div>", "<div>b</div>"]);
    }

    #[test]
    fn counts_must_agree() {
        let mut json: Value = serde_json::from_str(
            r#"{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div>"}}"#,
        )
        .expect("json");
        let unchanged = json.clone();
        assert!(!restore_json_narratives(&mut json, &[]));
        assert!(!restore_json_narratives(
            &mut json,
            &[PETER.into(), PETER.into()]
        ));
        assert_eq!(json, unchanged);
        let xml = b"<Patient xmlns=\"http://hl7.org/fhir\"/>".to_vec();
        assert_eq!(restore_xml_narratives(xml.clone(), &[PETER]), xml);
    }

    #[test]
    fn a_different_narrative_is_not_put_in_its_place() {
        let mut json: Value = serde_json::from_str(
            r#"{"text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>A</b></div>"}}"#,
        )
        .expect("json");
        let unchanged = json.clone();
        assert!(!restore_json_narratives(&mut json, &[PETER.into()]));
        assert_eq!(json, unchanged);
    }

    #[test]
    fn narrative_with_namespace_declared_outside_is_left_to_fhirbolt() {
        let xml = r#"<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><text><status value="generated"/><h:div><h:b>Name</h:b> Peter</h:div></text></Patient>"#;
        let divs = xml_narratives(xml.as_bytes());
        assert_eq!(divs, ["<h:div><h:b>Name</h:b> Peter</h:div>"]);
        assert!(!stands_alone(&divs[0]));
        let mut json: Value =
            serde_json::from_str(r#"{"text":{"div":"<h:div><h:b>Name</h:b>Peter</h:div>"}}"#)
                .expect("json");
        let unchanged = json.clone();
        assert!(!restore_json_narratives(&mut json, &divs));
        assert_eq!(json, unchanged);
        // a prefix declared on the narrative itself stands alone
        assert!(stands_alone(
            r#"<h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:b>x</h:b></h:div>"#
        ));
    }

    #[test]
    fn xhtml_inside_xhtml_is_one_narrative_and_line_ends_are_xml() {
        let xml = "<Basic xmlns=\"http://hl7.org/fhir\"><text><div xmlns=\"http://www.w3.org/1999/xhtml\">a\r\n<div>b</div>\r</div></text></Basic>";
        assert_eq!(
            xml_narratives(xml.as_bytes()),
            ["<div xmlns=\"http://www.w3.org/1999/xhtml\">a\n<div>b</div>\n</div>"]
        );
        assert!(xml_narratives(b"<a><b></a>").is_empty());
    }

    #[test]
    fn malformed_json_narrative_is_not_written_into_xml() {
        let xml = format!(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{PETER}</text></Patient>"#
        )
        .into_bytes();
        for div in [
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>x</div>",
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>trailing",
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div><div xmlns=\"http://www.w3.org/1999/xhtml\">y</div>",
            "<div>no namespace</div>",
            "</div><div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>",
            "<p xmlns=\"http://www.w3.org/1999/xhtml\">not a div</p>",
        ] {
            assert_eq!(restore_xml_narratives(xml.clone(), &[div]), xml, "{div}");
        }
    }

    fn number_at(v: &Value) -> String {
        v["valueQuantity"]["value"].to_string()
    }

    /// What the readers do to decimals, measured: the JSON reader writes exponents as
    /// `e` with a sign before fhirbolt sees them (in the client's parsed document too);
    /// everything else is kept as written.
    #[test]
    fn decimal_texts_through_json_and_xml() {
        let json = |v: &str| {
            format!(
                r#"{{"resourceType":"Observation","status":"final","code":{{"text":"w"}},"valueQuantity":{{"value":{v}}}}}"#
            )
        };
        let xml = |v: &str| {
            format!(
                r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="w"/></code><valueQuantity><value value="{v}"/></valueQuantity></Observation>"#
            )
        };
        for (sent, kept) in [
            ("1E-22", "1e-22"),
            ("1.5e3", "1.5e+3"),
            ("12.500", "12.500"),
            ("0.80", "0.80"),
            ("-0", "-0"),
            ("1e2", "1e+2"),
        ] {
            let original: Value = serde_json::from_str(&json(sent)).expect("json");
            assert_eq!(number_at(&original), kept, "serde_json reading {sent}");
            let parsed = parse_json(&json(sent));
            assert_eq!(number_at(&value(&parsed)), kept, "JSON {sent}");
            let rendered =
                render(&parsed.to_json_bytes(), Format::Xml, false).expect("renders as XML");
            let rendered = String::from_utf8(rendered).expect("utf8");
            assert!(
                rendered.contains(&format!("<value value=\"{kept}\"/>")),
                "{rendered}"
            );
            assert_eq!(
                number_at(&value(&parse_xml(&xml(sent)))),
                kept,
                "XML {sent}"
            );
        }
    }
}
