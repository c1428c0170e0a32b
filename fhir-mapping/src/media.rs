//! Exercise media stored as `Binary`: the content types accepted, the size limit, and a
//! check that the bytes are what the declared type says (by their signature), so a
//! sheet or an app never receives a script or a document labelled as a picture.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::{Issue, IssueType};

/// The media types a `Binary` may hold: pictures and short videos of exercises.
pub const ACCEPTED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
];

/// The media type the bytes' signature shows, among [`ACCEPTED`].
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        Some("video/mp4")
    } else if starts(b"\x1A\x45\xDF\xA3") {
        Some("video/webm")
    } else {
        None
    }
}

/// The essence of a media type (`image/png; x=y` -> `image/png`), lower case.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks media bytes against their declared type and the size limit; every problem
/// found, each at `expression` when given.
pub fn check(content_type: &str, bytes: &[u8], max_bytes: usize, at: Option<&str>) -> Vec<Issue> {
    let locate = |i: Issue, path: &str| match at {
        Some(base) => i.at(format!("{base}.{path}")),
        None => i,
    };
    let mut issues = Vec::new();
    let declared = essence(content_type);
    if !ACCEPTED.contains(&declared.as_str()) {
        issues.push(locate(
            Issue::error(
                IssueType::NotSupported,
                format!(
                    "media of type `{declared}` are not accepted; accepted types: {}",
                    ACCEPTED.join(", ")
                ),
            ),
            "contentType",
        ));
    }
    if bytes.len() > max_bytes {
        issues.push(locate(
            Issue::error(
                IssueType::TooLong,
                format!(
                    "the content has {} bytes; at most {max_bytes} are accepted",
                    bytes.len()
                ),
            ),
            "data",
        ));
    }
    if bytes.is_empty() {
        issues.push(locate(
            Issue::error(IssueType::Required, "the content is empty"),
            "data",
        ));
    } else if ACCEPTED.contains(&declared.as_str()) && sniff(bytes) != Some(declared.as_str()) {
        issues.push(locate(
            Issue::error(
                IssueType::Invalid,
                format!(
                    "the content is not {declared}{}",
                    sniff(bytes)
                        .map(|s| format!(" (it looks like {s})"))
                        .unwrap_or_default()
                ),
            ),
            "data",
        ));
    }
    issues
}

/// The largest JSON or XML document of a resource of `resource_type`: `max_body_bytes`,
/// and for a `Binary` room for `max_binary_bytes` of media in base64 besides.
pub fn body_limit(resource_type: &str, max_body_bytes: usize, max_binary_bytes: usize) -> usize {
    if resource_type == "Binary" {
        max_body_bytes.max(max_binary_bytes.saturating_mul(4) / 3 + 64 * 1024)
    } else {
        max_body_bytes
    }
}

/// The `Binary` resource holding `bytes` of `content_type`.
pub fn binary(content_type: &str, bytes: &[u8]) -> Value {
    json!({
        "resourceType": "Binary",
        "contentType": essence(content_type),
        "data": STANDARD.encode(bytes),
    })
}

/// Decodes a `base64Binary` value, which R4 allows to hold whitespace (line breaks of
/// MIME-style base64).
pub fn decode_base64(data: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if data.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD.decode(compact)
    } else {
        STANDARD.decode(data)
    }
}

/// The content type and bytes of a stored `Binary`; `None` when it has no content or
/// its data is not base64.
pub fn content(binary: &Map<String, Value>) -> Option<(String, Vec<u8>)> {
    let content_type = binary.get("contentType")?.as_str()?.to_string();
    let data = binary.get("data")?.as_str()?;
    let bytes = decode_base64(data).ok()?;
    Some((content_type, bytes))
}

/// Checks a `Binary` resource written through the API: it must hold accepted media.
pub fn check_binary(binary: &Map<String, Value>, max_bytes: usize) -> Vec<Issue> {
    let content_type = binary
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(data) = binary.get("data").and_then(Value::as_str) else {
        return vec![
            Issue::error(
                IssueType::Required,
                "a Binary must hold its content in `data`",
            )
            .at("Binary.data"),
        ];
    };
    // Refuse before decoding when even the encoded size says too large.
    if data.len() / 4 * 3 > max_bytes + 3 {
        return vec![
            Issue::error(
                IssueType::TooLong,
                format!("the content is larger than {max_bytes} bytes"),
            )
            .at("Binary.data"),
        ];
    }
    match decode_base64(data) {
        Ok(bytes) => check(content_type, &bytes, max_bytes, Some("Binary")),
        Err(_) => vec![Issue::error(IssueType::Invalid, "`data` is not base64").at("Binary.data")],
    }
}

/// A `data:` URL of the image a `Binary` holds, for a self-contained page; `None` when
/// it is not an accepted image.
pub fn image_data_url(binary: &Map<String, Value>) -> Option<String> {
    let content_type = essence(binary.get("contentType")?.as_str()?);
    let data = binary.get("data")?.as_str()?;
    (content_type.starts_with("image/") && ACCEPTED.contains(&content_type.as_str())).then(|| {
        let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        format!("data:{content_type};base64,{data}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn signatures_must_match_the_declared_type() {
        assert_eq!(sniff(PNG), Some("image/png"));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"<script>alert(1)</script>"), None);
        assert!(check("image/png", PNG, 100, None).is_empty());
        assert!(check("image/png; charset=x", PNG, 100, None).is_empty());
        let wrong = check("image/jpeg", PNG, 100, Some("Binary"));
        assert_eq!(wrong.len(), 1);
        assert!(wrong[0].diagnostics.contains("looks like image/png"));
        assert_eq!(wrong[0].expression.as_deref(), Some("Binary.data"));
        let html = check("text/html", b"<p>hi</p>", 100, Some("Binary"));
        assert_eq!(html.len(), 1);
        assert_eq!(html[0].expression.as_deref(), Some("Binary.contentType"));
    }

    #[test]
    fn size_limit_and_round_trip() {
        assert_eq!(check("image/png", PNG, 4, None).len(), 1);
        let b = obj(binary("image/png", PNG));
        assert!(check_binary(&b, 100).is_empty());
        assert_eq!(check_binary(&b, 4).len(), 1);
        assert_eq!(content(&b), Some(("image/png".into(), PNG.to_vec())));
        assert!(
            image_data_url(&b)
                .unwrap_or_default()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
        let no_data = obj(json!({"resourceType": "Binary", "contentType": "image/png"}));
        assert_eq!(check_binary(&no_data, 100).len(), 1);
        let bad = obj(json!({"resourceType": "Binary", "contentType": "image/png", "data": "!!"}));
        assert_eq!(check_binary(&bad, 100).len(), 1);
    }
}
