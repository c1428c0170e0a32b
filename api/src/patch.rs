//! JSON Patch (RFC 6902, R4 http.html#patch) within bounds, for `PATCH` and for the
//! PATCH entries of Bundles.
//!
//! A patch has at most `--max-patch-operations` operations (more: 422), and the
//! document never grows past the body limit of its type: the operations are applied
//! one at a time (with the json-patch crate) and, before each, the size the document
//! will have is reckoned, so that a patch that would pass the limit stops with a 413
//! before it grows. `add`, `replace` and `move` grow the document by at most the
//! patch's own bytes; `copy` can double it at each operation, so the value it copies
//! is measured first, and the values all `copy` operations of one patch copy add up to
//! the body limit at most. The reckoning is an upper bound of the compact JSON size
//! (measured exactly at the start, and again at the end).

use fhir_mapping::{Issue, IssueType};
use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use crate::error::ApiError;

/// Reads a JSON Patch document of at most `max_operations` operations.
pub fn parse(body: &[u8], max_operations: usize) -> Result<Patch, ApiError> {
    let ops: Patch = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a JSON Patch document: {e}")))?;
    if ops.0.len() > max_operations {
        return Err(ApiError::Unprocessable(vec![Issue::error(
            IssueType::TooCostly,
            format!(
                "the patch has {} operations; this server applies at most {max_operations} \
                 per patch (--max-patch-operations)",
                ops.0.len()
            ),
        )]));
    }
    Ok(ops)
}

/// Applies `patch` to the stored JSON of a resource, the document never larger than
/// `max_bytes` (as compact JSON); the patched document as compact JSON.
pub fn apply(stored: &str, patch: &Patch, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
    let mut doc: Value = serde_json::from_str(stored)
        .map_err(|e| ApiError::internal_from("stored resource is not JSON", e))?;
    let too_large = |i: usize| {
        ApiError::TooLarge(format!(
            "the patched resource would be larger than the limit of {max_bytes} bytes \
             (operation {i})"
        ))
    };
    let mut size = json_len(&doc);
    let mut copied = 0usize;
    for (i, op) in patch.iter().enumerate() {
        size = match op {
            PatchOperation::Copy(c) => {
                let value = doc.pointer(c.from.as_str()).map_or(0, json_len);
                copied = copied.saturating_add(value);
                if copied > max_bytes {
                    return Err(ApiError::TooLarge(format!(
                        "the patch's copy operations copy more than {max_bytes} bytes \
                         (operation {i})"
                    )));
                }
                put(&doc, c.path.as_str(), value, size)
            }
            _ => size_after(&doc, op, size),
        };
        if size > max_bytes {
            return Err(too_large(i));
        }
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            ApiError::Unprocessable(vec![Issue::error(
                IssueType::Processing,
                format!(
                    "the patch cannot be applied: operation '/{i}' failed at path '{}': {}",
                    e.path, e.kind
                ),
            )])
        })?;
    }
    let bytes =
        serde_json::to_vec(&doc).map_err(|e| ApiError::internal_from("serialising JSON", e))?;
    if bytes.len() > max_bytes {
        return Err(too_large(patch.len().saturating_sub(1)));
    }
    Ok(bytes)
}

/// An upper bound of the document's size once `op` is applied, from `size`, a bound of
/// its size before. Reads only the values the operation adds, replaces, removes or
/// copies, never the whole document.
fn size_after(doc: &Value, op: &PatchOperation, size: usize) -> usize {
    match op {
        PatchOperation::Test(_) => size,
        PatchOperation::Add(a) => put(doc, a.path.as_str(), json_len(&a.value), size),
        PatchOperation::Copy(c) => {
            let value = doc.pointer(c.from.as_str()).map_or(0, json_len);
            put(doc, c.path.as_str(), value, size)
        }
        PatchOperation::Replace(r) => {
            let new = json_len(&r.value);
            if r.path.as_str().is_empty() {
                return new;
            }
            let old = doc.pointer(r.path.as_str()).map_or(0, json_len);
            size.saturating_sub(old).saturating_add(new)
        }
        // the member's key (and a comma) gone, its value alone counted off
        PatchOperation::Remove(r) => {
            size.saturating_sub(doc.pointer(r.path.as_str()).map_or(0, json_len))
        }
        // the same value under another key: at most that key and a comma more
        PatchOperation::Move(m) => size.saturating_add(key_len(m.path.as_str()) + 2),
    }
}

/// The bound after a value of `value` bytes is put at `path` (`add`, `copy`): in place
/// of the member it replaces, or as a new member (key, colon, comma) or array item.
fn put(doc: &Value, path: &str, value: usize, size: usize) -> usize {
    let Some((parent, _)) = path.rsplit_once('/') else {
        // the empty pointer: the value becomes the document
        return value;
    };
    let in_object = doc.pointer(parent).is_some_and(Value::is_object);
    let replaced = if in_object {
        doc.pointer(path).map(json_len)
    } else {
        None
    };
    match replaced {
        Some(old) => size.saturating_sub(old).saturating_add(value),
        None => size.saturating_add(value).saturating_add(key_len(path) + 2),
    }
}

/// The length of the last token of a JSON Pointer as a JSON string (with its quotes).
fn key_len(path: &str) -> usize {
    let token = path.rsplit_once('/').map_or(path, |(_, t)| t);
    json_len(&token.replace("~1", "/").replace("~0", "~"))
}

/// The length of a value as compact JSON, counted without writing it anywhere.
fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // writing to a counter cannot fail; a value that cannot be written counts as 0
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(ops: serde_json::Value) -> Patch {
        serde_json::from_value(ops).expect("patch")
    }

    #[test]
    fn the_reckoned_size_is_never_below_the_real_one() {
        let stored = r#"{"resourceType":"Patient","id":"p","name":[{"family":"A","given":["B","C"]}],"active":true}"#;
        let ops = patch(serde_json::json!([
            {"op": "add", "path": "/gender", "value": "female"},
            {"op": "add", "path": "/name/0/given/-", "value": "D"},
            {"op": "copy", "from": "/name/0", "path": "/name/-"},
            {"op": "replace", "path": "/name/1/family", "value": "Longer family name"},
            {"op": "move", "from": "/gender", "path": "/g~1x"},
            {"op": "remove", "path": "/name/0"},
            {"op": "add", "path": "/active", "value": false},
            {"op": "test", "path": "/active", "value": false}
        ]));
        let mut doc: Value = serde_json::from_str(stored).expect("json");
        let mut size = json_len(&doc);
        for op in ops.iter() {
            size = size_after(&doc, op, size);
            json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).expect("applies");
            assert!(size >= json_len(&doc), "{op}: {size} < {}", json_len(&doc));
        }
        let out = apply(stored, &ops, 10_000).expect("patched");
        assert_eq!(out.len(), json_len(&doc));
    }

    #[test]
    fn copies_that_double_the_document_stop_at_the_limit() {
        let stored =
            r#"{"resourceType":"Patient","id":"p","a":["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]}"#;
        let mut ops = vec![];
        for _ in 0..40 {
            ops.push(serde_json::json!({"op": "copy", "from": "/a", "path": "/a/-"}));
        }
        let err =
            apply(stored, &patch(serde_json::Value::Array(ops)), 64 * 1024).expect_err("too large");
        assert_eq!(err.status().as_u16(), 413);
    }

    #[test]
    fn too_many_operations_are_refused_before_any_is_applied() {
        let body = serde_json::to_vec(&serde_json::json!([
            {"op": "test", "path": "/id", "value": "p"},
            {"op": "test", "path": "/id", "value": "p"}
        ]))
        .expect("json");
        assert!(parse(&body, 2).is_ok());
        let err = parse(&body, 1).expect_err("too many");
        assert_eq!(err.status().as_u16(), 422);
    }
}
