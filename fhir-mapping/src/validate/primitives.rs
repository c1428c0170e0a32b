//! FHIR R4 primitive values as they appear in FHIR JSON: the JSON type each primitive
//! takes, and the lexical rules of R4 datatypes.html (number ranges, code and id
//! characters, uri, oid, uuid, base64Binary, and the date and time formats).
//!
//! Every refusal is one sentence meant for the person who wrote the resource.

use serde_json::Value;

/// Largest string R4 allows, in bytes (datatypes.html, string).
const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Longest value shown back in a message, in characters.
const SHOWN_CHARS: usize = 64;

/// Checks a FHIR R4 primitive value as it appears in FHIR JSON.
///
/// `type_code` is the R4 type name: boolean, integer, positiveInt, unsignedInt, decimal,
/// string, code, id, uri, url, canonical, oid, uuid, markdown, base64Binary, date,
/// dateTime, instant, time, xhtml. Unknown codes: `Ok(())`.
/// The error is one sentence for a person, e.g.
/// "`1990-13-45` is not a valid date: there is no month 13".
pub(crate) fn check(type_code: &str, value: &Value) -> Result<(), String> {
    match type_code {
        "boolean" => match value {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "true" || s == "false" => Err(format!(
                "expected true or false, not a string (write {s}, not \"{s}\")"
            )),
            other => Err(format!("expected true or false, not {}", kind(other))),
        },
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => {
            let text = number_text(value)?;
            match type_code {
                "decimal" => Ok(()),
                _ => whole_number(type_code, &text),
            }
        }
        "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid" | "markdown"
        | "base64Binary" | "date" | "dateTime" | "instant" | "time" | "xhtml" => {
            let s = string_value(value)?;
            if s.is_empty() && type_code != "xhtml" {
                let article = if type_code.starts_with(['i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                return Err(format!(
                    "{article} {type_code} may not be empty: leave the element out instead"
                ));
            }
            let problem = match type_code {
                "string" => string(s),
                "code" => code(s),
                "id" => id(s),
                "uri" | "url" | "canonical" => uri(s),
                "oid" => oid(s),
                "uuid" => uuid(s),
                "base64Binary" => base64(s),
                "date" => date(s),
                "dateTime" => date_time(s),
                "instant" => instant(s),
                "time" => time(s),
                // markdown: any text that is not empty; xhtml: checked as a narrative.
                _ => Ok(()),
            };
            problem.map_err(|why| match why {
                Why::Alone(sentence) => sentence,
                Why::Because(reason) => {
                    format!("`{}` is not a valid {type_code}: {reason}", show(s))
                }
            })
        }
        _ => Ok(()),
    }
}

/// What is wrong with a string value.
enum Why {
    /// A whole sentence, which does not repeat the value.
    Alone(String),
    /// The reason only: the caller names the value and its type first.
    Because(String),
}

fn because(reason: impl Into<String>) -> Why {
    Why::Because(reason.into())
}

/// The JSON type of `value`, with its article, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `value` for a message: control characters escaped, long values shortened.
fn show(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The number's text exactly as written in the document.
fn number_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if looks_like_json_number(s) => Err(format!(
            "expected a JSON number, not a string (write {s}, not \"{s}\")"
        )),
        Value::String(_) => {
            Err("expected a JSON number, not a string (write the number without quotes)".to_owned())
        }
        other => Err(format!("expected a JSON number, not {}", kind(other))),
    }
}

/// True when `s` is written as a JSON number would be: `-`? digits, fraction, exponent.
fn looks_like_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == start {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// integer, positiveInt and unsignedInt: no fraction, no exponent, in range.
fn whole_number(type_code: &str, text: &str) -> Result<(), String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a valid {type_code}: write a whole number, without a fraction or exponent",
            show(text)
        ));
    }
    let (low, high): (i64, i64) = match type_code {
        "positiveInt" => (1, 2_147_483_647),
        "unsignedInt" => (0, 2_147_483_647),
        _ => (-2_147_483_648, 2_147_483_647),
    };
    if low >= 0 && text.starts_with('-') {
        return Err(format!(
            "`{text}` is not a valid {type_code}: it may not be negative (the lowest value is {low})"
        ));
    }
    match text.parse::<i64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        Ok(n) if n < low && low == 1 => Err(format!(
            "`{text}` is not a valid positiveInt: it must be at least 1"
        )),
        _ => Err(format!(
            "`{}` is out of range for {type_code}: it must be between {low} and {high}",
            show(text)
        )),
    }
}

/// The text of a JSON string, or a message naming what was given instead.
fn string_value(value: &Value) -> Result<&str, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => {
            let n = n.to_string();
            Err(format!(
                "expected a JSON string, not a number (write \"{}\", not {})",
                show(&n),
                show(&n)
            ))
        }
        Value::Bool(b) => Err(format!(
            "expected a JSON string, not true or false (write \"{b}\", not {b})"
        )),
        other => Err(format!("expected a JSON string, not {}", kind(other))),
    }
}

fn string(s: &str) -> Result<(), Why> {
    if s.len() > MAX_STRING_BYTES {
        return Err(Why::Alone(format!(
            "the string is {} bytes long, more than the 1,048,576 bytes (1 MB) allowed",
            s.len()
        )));
    }
    Ok(())
}

/// code: `[^\s]+(\s[^\s]+)*`, where the only separator is one space.
/// R4's pattern `[^\s]+(\s[^\s]+)*`, whose `\s` is the ASCII white space of the
/// regular expressions FHIR's patterns are written for (space, tab, line breaks, vertical
/// tab, form feed): a no-break space is an ordinary character of a code.
fn code(s: &str) -> Result<(), Why> {
    if let Some(c) = s
        .chars()
        .find(|&c| matches!(c, '\t' | '\n' | '\r' | '\x0B' | '\x0C'))
    {
        return Err(because(format!(
            "it contains {} (words may only be separated by single spaces)",
            whitespace_name(c)
        )));
    }
    if s.starts_with(' ') {
        return Err(because("it starts with a space"));
    }
    if s.ends_with(' ') {
        return Err(because("it ends with a space"));
    }
    if s.contains("  ") {
        return Err(because(
            "it has two spaces in a row (words may only be separated by single spaces)",
        ));
    }
    Ok(())
}

/// How a whitespace character is named in messages.
fn whitespace_name(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c => format!("the control character U+{:04X}", u32::from(c)),
    }
}

/// id: 1 to 64 characters of `[A-Za-z0-9\-\.]`.
fn id(s: &str) -> Result<(), Why> {
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        let shown = if c.is_whitespace() {
            whitespace_name(c)
        } else {
            format!("`{}`", show(&c.to_string()))
        };
        return Err(because(format!(
            "it contains {shown} (an id may only contain letters A-Z and a-z, digits, `-` and `.`)"
        )));
    }
    let count = s.chars().count();
    if count > 64 {
        return Err(because(format!(
            "it is {count} characters long, and an id has at most 64"
        )));
    }
    Ok(())
}

/// uri, url and canonical: not empty, no white space.
fn uri(s: &str) -> Result<(), Why> {
    if let Some(c) = s.chars().find(|c| c.is_whitespace()) {
        return Err(because(format!(
            "it contains {} (write a space as %20)",
            whitespace_name(c)
        )));
    }
    Ok(())
}

/// oid: `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
fn oid(s: &str) -> Result<(), Why> {
    let shape =
        || because("expected urn:oid: and then numbers separated by dots, such as urn:oid:1.2.3.4");
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return Err(shape());
    };
    let mut arcs = rest.split('.');
    match arcs.next() {
        Some("0" | "1" | "2") => {}
        _ => return Err(shape()),
    }
    let mut more = 0;
    for arc in arcs {
        more += 1;
        let digits_only = !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit());
        if !digits_only {
            return Err(shape());
        }
        if arc.len() > 1 && arc.starts_with('0') {
            return Err(because(format!("the number `{arc}` has a leading zero")));
        }
    }
    if more == 0 {
        return Err(shape());
    }
    Ok(())
}

/// uuid: `urn:uuid:` and then 8-4-4-4-12 lower-case hex digits.
fn uuid(s: &str) -> Result<(), Why> {
    let shape = || {
        because(
            "expected urn:uuid: and then a lower-case UUID, such as \
             urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        )
    };
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return Err(shape());
    };
    let groups: Vec<&str> = rest.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(shape());
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(because("its hex digits must be lower-case"));
    }
    Ok(())
}

/// base64Binary: white space ignored, then groups of 4 characters of `[A-Za-z0-9+/]`,
/// with 1 or 2 `=` of padding at the very end only.
fn base64(s: &str) -> Result<(), Why> {
    let data: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    if data.is_empty() {
        return Err(Why::Alone(
            "base64 data may not be empty: leave the element out instead".to_owned(),
        ));
    }
    if let Some(c) = s.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | ' ' | '\t' | '\r' | '\n'))
    }) {
        let shown = if c.is_whitespace() {
            whitespace_name(c)
        } else {
            format!("`{}`", show(&c.to_string()))
        };
        return Err(because(format!(
            "it contains {shown} (base64 uses only A-Z, a-z, 0-9, `+`, `/` and `=` at the end)"
        )));
    }
    let padding = data.iter().rev().take_while(|&&b| b == b'=').count();
    if data[..data.len() - padding].contains(&b'=') {
        return Err(because("`=` may only appear at the very end, as padding"));
    }
    if padding > 2 {
        return Err(because("it ends with more than two `=`"));
    }
    if !data.len().is_multiple_of(4) {
        return Err(because(format!(
            "it has {} characters (not counting white space), and base64 needs a multiple of 4 \
             (is the `=` padding missing?)",
            data.len()
        )));
    }
    Ok(())
}

/// What is wrong with a date or a time.
enum Bad {
    /// Not the expected layout: the caller says what is expected.
    Shape,
    /// The layout is right, but a part is out of range or missing.
    Reason(String),
}

fn reason(text: impl Into<String>) -> Bad {
    Bad::Reason(text.into())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The value of `b` when it is made of ASCII digits only (and not empty).
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// The two ASCII bytes of `b` from `at`, shown in messages.
fn two(b: &[u8], at: usize) -> String {
    String::from_utf8_lossy(&b[at..at + 2]).into_owned()
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, with the ranges of a real calendar date.
fn ymd(b: &[u8]) -> Result<(), Bad> {
    if !matches!(b.len(), 4 | 7 | 10) {
        return Err(Bad::Shape);
    }
    let year = digits(&b[..4]).ok_or(Bad::Shape)?;
    let month = if b.len() >= 7 {
        if b[4] != b'-' {
            return Err(Bad::Shape);
        }
        Some(digits(&b[5..7]).ok_or(Bad::Shape)?)
    } else {
        None
    };
    let day = if b.len() == 10 {
        if b[7] != b'-' {
            return Err(Bad::Shape);
        }
        Some(digits(&b[8..10]).ok_or(Bad::Shape)?)
    } else {
        None
    };
    if year == 0 {
        return Err(reason("there is no year 0000 (years start at 0001)"));
    }
    let Some(month) = month else {
        return Ok(());
    };
    if !(1..=12).contains(&month) {
        return Err(reason(format!("there is no month {}", two(b, 5))));
    }
    let Some(day) = day else {
        return Ok(());
    };
    let length = match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 {
        return Err(reason("there is no day 00"));
    }
    if day > length {
        let name = MONTHS[month as usize - 1];
        return Err(reason(if month == 2 {
            format!(
                "February {} has {length} days",
                String::from_utf8_lossy(&b[..4])
            )
        } else {
            format!("{name} has {length} days")
        }));
    }
    Ok(())
}

/// `hh:mm:ss` and an optional fraction at the start of `b`; returns the length read.
fn hms(b: &[u8]) -> Result<usize, Bad> {
    let pair = |at: usize| b.get(at..at + 2).and_then(digits);
    let (Some(hour), Some(minute)) = (pair(0), pair(3)) else {
        return Err(Bad::Shape);
    };
    if b[2] != b':' {
        return Err(Bad::Shape);
    }
    if matches!(b.get(5), None | Some(b'Z' | b'+' | b'-')) {
        let hh_mm = String::from_utf8_lossy(&b[..5]).into_owned();
        return Err(reason(format!(
            "seconds are required (write {hh_mm}:00, not {hh_mm})"
        )));
    }
    if b[5] != b':' {
        return Err(Bad::Shape);
    }
    let second = pair(6).ok_or(Bad::Shape)?;
    if hour > 23 {
        return Err(reason(format!(
            "there is no hour {} (hours go from 00 to 23)",
            two(b, 0)
        )));
    }
    if minute > 59 {
        return Err(reason(format!(
            "there is no minute {} (minutes go from 00 to 59)",
            two(b, 3)
        )));
    }
    if second == 60 && !(hour == 23 && minute == 59) {
        return Err(reason(
            "second 60 exists only as a leap second, at 23:59:60",
        ));
    }
    if second > 60 {
        return Err(reason(format!(
            "there is no second {} (seconds go from 00 to 59)",
            two(b, 6)
        )));
    }
    let mut end = 8;
    if b.get(end) == Some(&b'.') {
        end += 1;
        let start = end;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return Err(reason(
                "the fraction of a second needs at least one digit after the `.`",
            ));
        }
    }
    Ok(end)
}

/// A time zone: `Z`, or `+hh:mm` / `-hh:mm` from -14:00 to +14:00.
fn zone(b: &[u8]) -> Result<(), Bad> {
    if b.is_empty() {
        return Err(reason("a time needs a time zone, such as Z or +02:00"));
    }
    if b == b"Z" {
        return Ok(());
    }
    let shape = || reason("expected the time zone as Z, or as +hh:mm or -hh:mm");
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return Err(shape());
    }
    let (Some(hours), Some(minutes)) = (digits(&b[1..3]), digits(&b[4..6])) else {
        return Err(shape());
    };
    if minutes > 59 {
        return Err(reason(format!(
            "the time zone {} has no minute {}",
            String::from_utf8_lossy(b),
            two(b, 4)
        )));
    }
    if hours > 14 || (hours == 14 && minutes != 0) {
        return Err(reason(format!(
            "the time zone {} is out of range (offsets go from -14:00 to +14:00)",
            String::from_utf8_lossy(b)
        )));
    }
    Ok(())
}

/// `YYYY-MM-DDThh:mm:ss(.fraction)?` and a time zone, with no other precision.
fn full_date_time(b: &[u8]) -> Result<(), Bad> {
    if b.len() < 11 || b[10] != b'T' {
        return Err(Bad::Shape);
    }
    ymd(&b[..10])?;
    let time = &b[11..];
    let end = hms(time)?;
    zone(&time[end..])
}

fn date(s: &str) -> Result<(), Why> {
    ymd(s.as_bytes()).map_err(|bad| match bad {
        Bad::Shape => because("expected YYYY, YYYY-MM or YYYY-MM-DD"),
        Bad::Reason(r) => because(r),
    })
}

fn date_time(s: &str) -> Result<(), Why> {
    let b = s.as_bytes();
    let result = if b.contains(&b'T') {
        full_date_time(b)
    } else {
        ymd(b)
    };
    result.map_err(|bad| match bad {
        Bad::Shape => because("expected a date or a date and time such as 2024-05-01T10:30:00Z"),
        Bad::Reason(r) => because(r),
    })
}

fn instant(s: &str) -> Result<(), Why> {
    let needs = "an instant needs the date, the time and a time zone, such as 2024-05-01T10:30:00Z";
    let b = s.as_bytes();
    full_date_time(b).map_err(|bad| match bad {
        Bad::Shape => because(needs),
        Bad::Reason(_) if b.len() >= 11 && zone_missing(b) => because(needs),
        Bad::Reason(r) => because(r),
    })
}

/// True when a date and time ends without any time zone.
fn zone_missing(b: &[u8]) -> bool {
    let time = &b[11..];
    matches!(hms(time), Ok(end) if end == time.len())
}

fn time(s: &str) -> Result<(), Why> {
    let b = s.as_bytes();
    let shape = || because("expected hh:mm:ss, such as 10:30:00");
    match hms(b) {
        Ok(end) if end == b.len() => Ok(()),
        Ok(end) if matches!(b[end], b'Z' | b'+' | b'-') => Err(because(
            "a time of day may not have a time zone (use dateTime for a moment in time)",
        )),
        Ok(_) | Err(Bad::Shape) => Err(shape()),
        Err(Bad::Reason(r)) => Err(because(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use serde_json::{Value, json};

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON")
    }

    fn ok(type_code: &str, value: Value) {
        assert_eq!(check(type_code, &value), Ok(()), "{type_code} {value}");
    }

    fn refused(type_code: &str, value: Value) -> String {
        match check(type_code, &value) {
            Ok(()) => panic!("{type_code} {value} was accepted"),
            Err(message) => message,
        }
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn unknown_type_codes_are_accepted() {
        ok("Quantity", json!({"value": 1}));
        ok("somethingElse", json!([1, 2]));
    }

    #[test]
    fn boolean() {
        ok("boolean", json!(true));
        ok("boolean", json!(false));
        let message = refused("boolean", s("true"));
        assert!(message.contains("write true, not \"true\""), "{message}");
        refused("boolean", json!(1));
        refused("boolean", s("yes"));
    }

    #[test]
    fn integer() {
        ok("integer", parsed("0"));
        ok("integer", parsed("-0"));
        ok("integer", parsed("42"));
        ok("integer", parsed("2147483647"));
        ok("integer", parsed("-2147483648"));
        let message = refused("integer", parsed("2147483648"));
        assert!(message.contains("out of range"), "{message}");
        refused("integer", parsed("-2147483649"));
        refused("integer", parsed("99999999999999999999999"));
        let message = refused("integer", parsed("1.0"));
        assert!(message.contains("`1.0`"), "{message}");
        refused("integer", parsed("1e2"));
        refused("integer", parsed("1E2"));
        let message = refused("integer", s("12"));
        assert_eq!(
            message,
            "expected a JSON number, not a string (write 12, not \"12\")"
        );
        refused("integer", json!(true));
    }

    #[test]
    fn positive_and_unsigned_int() {
        ok("positiveInt", parsed("1"));
        ok("positiveInt", parsed("2147483647"));
        let message = refused("positiveInt", parsed("0"));
        assert!(message.contains("at least 1"), "{message}");
        refused("positiveInt", parsed("-0"));
        refused("positiveInt", parsed("-5"));
        refused("positiveInt", parsed("2147483648"));
        ok("unsignedInt", parsed("0"));
        ok("unsignedInt", parsed("2147483647"));
        refused("unsignedInt", parsed("-0"));
        refused("unsignedInt", parsed("-1"));
        refused("unsignedInt", parsed("2147483648"));
        refused("unsignedInt", parsed("3.5"));
        refused("unsignedInt", s("3"));
    }

    #[test]
    fn decimal() {
        ok("decimal", parsed("1.5"));
        ok("decimal", parsed("12.500"));
        ok("decimal", parsed("1E-22"));
        ok("decimal", parsed("-0.0"));
        ok(
            "decimal",
            parsed("123456789012345678901234567890.123456789"),
        );
        let message = refused("decimal", s("1.5"));
        assert_eq!(
            message,
            "expected a JSON number, not a string (write 1.5, not \"1.5\")"
        );
        let message = refused("decimal", s("one"));
        assert!(message.contains("without quotes"), "{message}");
        refused("decimal", json!(null));
        refused("decimal", json!([1.5]));
    }

    #[test]
    fn string() {
        ok("string", s("Squats, 3 sets of 10"));
        ok("string", s("   "));
        ok("string", s("line one\nline two"));
        let message = refused("string", s(""));
        assert!(message.contains("empty"), "{message}");
        ok("string", s(&"x".repeat(1_048_576)));
        refused("string", s(&"x".repeat(1_048_577)));
        let message = refused("string", json!(12));
        assert_eq!(
            message,
            "expected a JSON string, not a number (write \"12\", not 12)"
        );
        refused("string", json!(false));
        refused("string", json!({}));
    }

    #[test]
    fn code() {
        ok("code", s("active"));
        ok("code", s("in progress"));
        ok("code", s("a b c"));
        ok("code", s("µg/kg"));
        refused("code", s(""));
        let message = refused("code", s("  a"));
        assert!(
            message.starts_with("`  a` is not a valid code"),
            "{message}"
        );
        refused("code", s("a "));
        let message = refused("code", s("a  b"));
        assert!(message.contains("two spaces"), "{message}");
        let message = refused("code", s("a\tb"));
        assert!(message.contains("tab"), "{message}");
        refused("code", s("a\nb"));
        refused("code", s(" "));
        refused("code", json!(1));
    }

    #[test]
    fn id() {
        ok("id", s("a"));
        ok("id", s("Patient-1.2"));
        ok("id", s(&"a".repeat(64)));
        let message = refused("id", s(&"a".repeat(65)));
        assert!(message.contains("65 characters"), "{message}");
        refused("id", s(""));
        let message = refused("id", s("a_b"));
        assert!(message.contains("`_`"), "{message}");
        refused("id", s("a b"));
        refused("id", s("é"));
        refused("id", s("a/b"));
    }

    #[test]
    fn uri_url_canonical() {
        ok("uri", s("http://example.org/fhir"));
        ok("uri", s("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
        ok("uri", s("#p1"));
        ok("url", s("https://example.org/a?b=c"));
        ok(
            "canonical",
            s("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1"),
        );
        let message = refused("uri", s("not a uri"));
        assert_eq!(
            message,
            "`not a uri` is not a valid uri: it contains a space (write a space as %20)"
        );
        refused("url", s("http://example.org/a b"));
        refused("canonical", s("http://example.org/\n"));
        refused("uri", s(""));
        refused("url", json!(3));
    }

    #[test]
    fn oid() {
        ok("oid", s("urn:oid:1.2.3.4"));
        ok("oid", s("urn:oid:2.16.840.1.113883"));
        ok("oid", s("urn:oid:0.0"));
        refused("oid", s("urn:oid:1"));
        refused("oid", s("urn:oid:3.1"));
        refused("oid", s("urn:oid:1.02"));
        refused("oid", s("urn:oid:1..2"));
        refused("oid", s("urn:oid:1.2."));
        refused("oid", s("1.2.3"));
        refused("oid", s("urn:oid:12.3"));
    }

    #[test]
    fn uuid() {
        ok("uuid", s("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
        let message = refused("uuid", s("urn:uuid:C757873D-EC9A-4326-A141-556F43239520"));
        assert!(message.contains("lower-case"), "{message}");
        refused("uuid", s("c757873d-ec9a-4326-a141-556f43239520"));
        refused("uuid", s("urn:uuid:c757873d-ec9a-4326-a141-556f4323952"));
        refused("uuid", s("urn:uuid:c757873dec9a4326a141556f43239520"));
        refused("uuid", s("urn:uuid:g757873d-ec9a-4326-a141-556f43239520"));
    }

    #[test]
    fn markdown() {
        ok("markdown", s("**Hold** for 10 seconds"));
        ok("markdown", s(" "));
        refused("markdown", s(""));
        refused("markdown", json!(1));
    }

    #[test]
    fn base64_binary() {
        ok("base64Binary", s("SGVsbG8="));
        ok("base64Binary", s("SGVs\nbG8="));
        ok("base64Binary", s(" SGVs bG8=\r\n"));
        ok("base64Binary", s("SGk="));
        ok("base64Binary", s("SA=="));
        ok("base64Binary", s("ab+/"));
        let message = refused("base64Binary", s("SGVsbG8"));
        assert!(message.contains("multiple of 4"), "{message}");
        refused("base64Binary", s(""));
        refused("base64Binary", s(" \n "));
        refused("base64Binary", s("SG=sbG8="));
        refused("base64Binary", s("S==="));
        refused("base64Binary", s("===="));
        refused("base64Binary", s("SGVsbG8*"));
        refused("base64Binary", s("SGVs-G8="));
    }

    #[test]
    fn date() {
        ok("date", s("2024"));
        ok("date", s("2024-05"));
        ok("date", s("2024-05-01"));
        ok("date", s("0001-01-01"));
        ok("date", s("9999-12-31"));
        ok("date", s("2024-02-29"));
        ok("date", s("2000-02-29"));
        let message = refused("date", s("2023-02-29"));
        assert_eq!(
            message,
            "`2023-02-29` is not a valid date: February 2023 has 28 days"
        );
        let message = refused("date", s("2021-02-29"));
        assert_eq!(
            message,
            "`2021-02-29` is not a valid date: February 2021 has 28 days"
        );
        refused("date", s("1900-02-29"));
        let message = refused("date", s("1990-13-45"));
        assert_eq!(
            message,
            "`1990-13-45` is not a valid date: there is no month 13"
        );
        let message = refused("date", s("2024-04-31"));
        assert!(message.contains("April has 30 days"), "{message}");
        let message = refused("date", s("yesterday"));
        assert_eq!(
            message,
            "`yesterday` is not a valid date: expected YYYY, YYYY-MM or YYYY-MM-DD"
        );
        refused("date", s("0000"));
        refused("date", s("2024-00"));
        refused("date", s("2024-01-00"));
        refused("date", s("2024-1-01"));
        refused("date", s("24-01-01"));
        refused("date", s("2024/01/01"));
        refused("date", s("2024-01-01T10:00:00Z"));
        refused("date", s("２０２４"));
        refused("date", json!(2024));
    }

    #[test]
    fn date_time() {
        ok("dateTime", s("2024"));
        ok("dateTime", s("2024-05"));
        ok("dateTime", s("2024-05-01"));
        ok("dateTime", s("2024-05-01T10:30:00Z"));
        ok("dateTime", s("2024-05-01T10:30:00.5+02:00"));
        ok("dateTime", s("2024-05-01T10:30:00.123456789-05:30"));
        ok("dateTime", s("2024-05-01T00:00:00+14:00"));
        ok("dateTime", s("2024-05-01T00:00:00-14:00"));
        ok("dateTime", s("2024-05-01T00:00:00+13:59"));
        ok("dateTime", s("2020-01-01T23:59:60Z"));
        let message = refused("dateTime", s("2020-01-01T10:00:60Z"));
        assert!(message.contains("leap second"), "{message}");
        let message = refused("dateTime", s("2020-02-30"));
        assert_eq!(
            message,
            "`2020-02-30` is not a valid dateTime: February 2020 has 29 days"
        );
        let message = refused("dateTime", s("2020-01-01T10:00:00"));
        assert!(message.contains("time zone"), "{message}");
        let message = refused("dateTime", s("yesterday"));
        assert_eq!(
            message,
            "`yesterday` is not a valid dateTime: \
             expected a date or a date and time such as 2024-05-01T10:30:00Z"
        );
        let message = refused("dateTime", s("2020-01-01T10:00Z"));
        assert!(message.contains("seconds are required"), "{message}");
        refused("dateTime", s("2020-01-01T10:00"));
        refused("dateTime", s("2020-01-01T24:00:00Z"));
        refused("dateTime", s("2020-01-01T10:60:00Z"));
        refused("dateTime", s("2020-01-01T10:00:61Z"));
        refused("dateTime", s("2020-01-01T10:00:00.Z"));
        refused("dateTime", s("2020-01-01T10:00:00+14:01"));
        refused("dateTime", s("2020-01-01T10:00:00+15:00"));
        refused("dateTime", s("2020-01-01T10:00:00+02:60"));
        refused("dateTime", s("2020-01-01T10:00:00+0200"));
        refused("dateTime", s("2020-01-01T10:00:00z"));
        refused("dateTime", s("2020-01-01 10:00:00Z"));
        refused("dateTime", s("2020-01T10:00:00Z"));
        refused("dateTime", s("2020-01-01T"));
        refused("dateTime", s("2020-13-01T10:00:00Z"));
        refused("dateTime", s("2020-01-01T10:00:00Zjunk"));
        refused("dateTime", s(""));
    }

    #[test]
    fn instant() {
        ok("instant", s("2024-05-01T10:30:00Z"));
        ok("instant", s("2024-05-01T10:30:00.000+01:00"));
        ok("instant", s("2016-12-31T23:59:60Z"));
        let message = refused("instant", s("2020-01-01"));
        assert!(
            message.contains("an instant needs the date, the time and a time zone"),
            "{message}"
        );
        let message = refused("instant", s("2020-01-01T10:00:00"));
        assert!(
            message.contains("an instant needs the date, the time and a time zone"),
            "{message}"
        );
        refused("instant", s("2020"));
        refused("instant", s("2020-01-01T10:00Z"));
        refused("instant", s("2020-02-30T10:00:00Z"));
        refused("instant", s("2020-01-01T10:00:00+14:30"));
        refused("instant", json!(1_700_000_000));
    }

    #[test]
    fn time() {
        ok("time", s("00:00:00"));
        ok("time", s("10:30:00"));
        ok("time", s("23:59:59.999"));
        ok("time", s("23:59:60"));
        refused("time", s("12:00:60"));
        refused("time", s("24:00:00"));
        refused("time", s("10:60:00"));
        let message = refused("time", s("10:30"));
        assert!(message.contains("seconds are required"), "{message}");
        let message = refused("time", s("10:30:00Z"));
        assert!(message.contains("time zone"), "{message}");
        refused("time", s("10:30:00+01:00"));
        refused("time", s("1:30:00"));
        refused("time", s("10:30:00."));
        refused("time", s("noon"));
        refused("time", s(""));
    }

    #[test]
    fn xhtml_is_only_type_checked() {
        ok(
            "xhtml",
            s("<div xmlns=\"http://www.w3.org/1999/xhtml\">hi</div>"),
        );
        ok("xhtml", s("not checked here"));
        refused("xhtml", json!(1));
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let message = refused("code", s(&format!(" {}", "a".repeat(500))));
        assert!(message.len() < 200, "{message}");
        let message = refused("code", s("a\nb"));
        assert!(message.starts_with("`a\\nb`"), "{message}");
    }
}
