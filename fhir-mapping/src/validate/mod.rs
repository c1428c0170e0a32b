//! The value validator: every element of a resource checked against the R4 definitions
//! (element names, cardinality, JSON types, primitive values, required bindings, `ele-1`,
//! `ext-1`, references and narratives), all problems reported at once, each at its
//! FHIRPath location.
//!
//! It reads the document as the client sent it (a `serde_json::Value` with the numbers'
//! text kept), before anything is converted, so that a wrong JSON type is an error and
//! never a silent coercion. Choice elements are located with `ofType()`
//! (`Observation.value.ofType(Quantity).value`); repeating elements with their index.

mod definitions;
mod primitives;
mod xhtml;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::outcome::{Issue, IssueType};
use definitions::{Definitions, ElementDef, Kind, TypeDef};

/// Validates one resource as FHIR JSON (a document's root): every problem, each with its
/// location. Empty when the resource is valid R4.
pub fn validate(document: &Value) -> Vec<Issue> {
    let mut walker = Walker {
        defs: Definitions::get(),
        issues: Vec::new(),
        seen: HashSet::new(),
    };
    match document.as_object() {
        // a document of no known type is located at `resourceType` itself
        Some(obj) => match obj.get("resourceType").and_then(Value::as_str) {
            Some(root) if walker.defs.is_resource(root) => walker.resource(obj, root, None),
            _ => walker.resource(obj, "", None),
        },
        None => walker.error(
            IssueType::Structure,
            "a resource must be a JSON object",
            "Resource",
        ),
    }
    walker.issues
}

/// The ids of the resources contained in the resource being walked, for `#id`
/// references.
struct Scope<'a> {
    contained: Vec<&'a str>,
    /// Walking a contained resource: it may not contain resources itself (dom-2).
    inside_contained: bool,
}

struct Walker {
    defs: &'static Definitions,
    issues: Vec<Issue>,
    seen: HashSet<(String, String)>,
}

/// Where an element's children are defined: a type and a path below it.
#[derive(Clone, Copy)]
struct Place {
    type_name: &'static str,
    type_def: &'static TypeDef,
    parent: &'static str,
}

impl Walker {
    fn error(&mut self, code: IssueType, message: impl Into<String>, at: &str) {
        let message = message.into();
        if self.seen.insert((at.to_string(), message.clone())) {
            self.issues.push(Issue::error(code, message).at(at));
        }
    }

    fn resource(&mut self, obj: &Map<String, Value>, expr: &str, outer: Option<&Scope>) {
        let at_type = if expr.is_empty() {
            "resourceType".to_string()
        } else {
            format!("{expr}.resourceType")
        };
        let Some(resource_type) = obj.get("resourceType") else {
            self.error(
                IssueType::Required,
                "the resource has no `resourceType`",
                &at_type,
            );
            return;
        };
        let Some(name) = resource_type.as_str() else {
            self.error(
                IssueType::Structure,
                "`resourceType` must be a string naming an R4 resource type",
                &at_type,
            );
            return;
        };
        let Some((type_name, type_def)) = self
            .defs
            .types
            .get_key_value(name)
            .filter(|_| self.defs.is_resource(name))
        else {
            self.error(
                IssueType::NotSupported,
                format!("`{name}` is not an R4 resource type"),
                &at_type,
            );
            return;
        };
        let contained: Vec<&str> = obj
            .get("contained")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let scope = match outer {
            // A contained resource resolves `#id` among its container's resources.
            Some(outer) => Scope {
                contained: outer.contained.clone(),
                inside_contained: true,
            },
            None => Scope {
                contained,
                inside_contained: false,
            },
        };
        if scope.inside_contained && obj.contains_key("contained") {
            self.error(
                IssueType::Invariant,
                "a contained resource may not contain resources itself (dom-2)",
                &format!("{expr}.contained"),
            );
        }
        let place = Place {
            type_name,
            type_def,
            parent: "",
        };
        self.object(place, obj, expr, &scope, true);
    }

    /// The element of `place` a JSON key names, and for a choice the type it takes.
    fn find(place: Place, key: &str) -> Option<(&'static ElementDef, Option<&'static str>)> {
        let children = place.type_def.children.get(place.parent)?;
        if let Some(def) = children.iter().find(|d| d.name == key && !d.is_choice()) {
            return Some((def, None));
        }
        children.iter().filter(|d| d.is_choice()).find_map(|def| {
            let suffix = key.strip_prefix(def.name.trim_end_matches("[x]"))?;
            def.types
                .iter()
                .find(|t| capitalised(t.code) == suffix)
                .map(|t| (def, Some(t.code)))
        })
    }

    fn object(
        &mut self,
        place: Place,
        obj: &Map<String, Value>,
        expr: &str,
        scope: &Scope,
        is_resource: bool,
    ) {
        for (key, value) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (name, companion) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let Some((def, choice)) = Self::find(place, name) else {
                let hint = if key == "fhir_comments" {
                    " (comments are not part of R4 JSON)"
                } else {
                    ""
                };
                self.error(
                    IssueType::Structure,
                    format!("`{key}` is not an element of {}{hint}", element_name(place)),
                    &format!("{expr}.{key}"),
                );
                continue;
            };
            let here = match choice {
                Some(t) => format!(
                    "{expr}.{}.ofType({})",
                    def.name.trim_end_matches("[x]"),
                    capitalised(t)
                ),
                None => format!("{expr}.{name}"),
            };
            let code = choice.or_else(|| def.types.first().map(|t| t.code));
            if companion {
                let primitive =
                    def.content_reference.is_none() && def.types.len() == 1 || choice.is_some();
                match code.filter(|c| primitive && self.is_primitive(c)) {
                    Some(_) => self.companion(def, value, obj.get(name), &here),
                    None => self.error(
                        IssueType::Structure,
                        format!("`{name}` is not a primitive element: `{key}` is not allowed"),
                        &format!("{expr}.{key}"),
                    ),
                }
                continue;
            }
            let companion_items = obj.get(&format!("_{name}"));
            match (def.many, value) {
                (true, Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let at = format!("{here}[{i}]");
                        if item.is_null() {
                            let extended = companion_items
                                .and_then(|c| c.get(i))
                                .is_some_and(|c| !c.is_null());
                            if !extended {
                                self.error(
                                    IssueType::Structure,
                                    "null is allowed in an array only where the matching `_` element has an extension: leave the item out",
                                    &at,
                                );
                            }
                            continue;
                        }
                        self.value(place, def, code, item, &at, scope);
                    }
                }
                (true, _) => self.error(
                    IssueType::Structure,
                    format!("`{name}` repeats: its value must be a JSON array"),
                    &here,
                ),
                (false, Value::Array(_)) => self.error(
                    IssueType::Structure,
                    format!("`{name}` takes a single value, not an array"),
                    &here,
                ),
                (false, Value::Null) => self.error(
                    IssueType::Structure,
                    format!("`{name}` is null: leave the element out instead"),
                    &here,
                ),
                (false, item) => self.value(place, def, code, item, &here, scope),
            }
        }
        self.required(place, obj, expr);
        if !is_resource && obj.keys().all(|k| k == "id") {
            self.error(
                IssueType::Invariant,
                "an element must have a value or child elements, not only an id (ele-1)",
                expr,
            );
        }
    }

    fn is_primitive(&self, code: &str) -> bool {
        self.defs
            .types
            .get(code)
            .is_some_and(|t| t.kind == Kind::Primitive)
    }

    /// Elements with a minimum cardinality of one or more that are absent.
    fn required(&mut self, place: Place, obj: &Map<String, Value>, expr: &str) {
        let Some(children) = place.type_def.children.get(place.parent) else {
            return;
        };
        for def in children.iter().filter(|d| d.min > 0) {
            let present = if def.is_choice() {
                let prefix = def.name.trim_end_matches("[x]");
                obj.keys().any(|k| {
                    k.trim_start_matches('_')
                        .strip_prefix(prefix)
                        .is_some_and(|s| def.types.iter().any(|t| capitalised(t.code) == s))
                })
            } else {
                obj.contains_key(def.name) || obj.contains_key(&format!("_{}", def.name))
            };
            if !present {
                self.error(
                    IssueType::Required,
                    format!("`{}` is required here", def.name.trim_end_matches("[x]")),
                    &format!("{expr}.{}", def.name.trim_end_matches("[x]")),
                );
            }
        }
    }

    /// A primitive's `_element`: an Element (id, extensions), or for a repeating one an
    /// array aligned with the values.
    fn companion(&mut self, def: &ElementDef, value: &Value, values: Option<&Value>, at: &str) {
        let element = Place {
            type_name: "Element",
            type_def: &self.defs.types["Element"],
            parent: "",
        };
        let scope = Scope {
            contained: Vec::new(),
            inside_contained: false,
        };
        match (def.many, value) {
            (true, Value::Array(items)) => {
                let values = values.and_then(Value::as_array);
                if let Some(values) = values
                    && values.len() != items.len()
                {
                    self.error(
                        IssueType::Structure,
                        format!(
                            "`_{}` has {} items but `{}` has {}: the two arrays must line up",
                            def.name,
                            items.len(),
                            def.name,
                            values.len()
                        ),
                        at,
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let here = format!("{at}[{i}]");
                    match item {
                        Value::Null => {
                            let has_value =
                                values.and_then(|v| v.get(i)).is_some_and(|v| !v.is_null());
                            if !has_value {
                                self.error(
                                    IssueType::Structure,
                                    "an item that is null in both the value and its `_` array is not allowed",
                                    &here,
                                );
                            }
                        }
                        Value::Object(obj) => self.object(element, obj, &here, &scope, false),
                        _ => self.error(
                            IssueType::Structure,
                            "the extensions of a primitive value must be a JSON object",
                            &here,
                        ),
                    }
                }
            }
            (false, Value::Object(obj)) => self.object(element, obj, at, &scope, false),
            (true, _) => self.error(
                IssueType::Structure,
                format!(
                    "`_{}` must be an array lined up with `{}`",
                    def.name, def.name
                ),
                at,
            ),
            (false, _) => self.error(
                IssueType::Structure,
                "the extensions of a primitive value must be a JSON object",
                at,
            ),
        }
    }

    fn value(
        &mut self,
        place: Place,
        def: &'static ElementDef,
        code: Option<&'static str>,
        item: &Value,
        at: &str,
        scope: &Scope,
    ) {
        if let Some(target) = def.content_reference {
            let inner = Place {
                parent: target,
                ..place
            };
            self.nested_object(inner, item, at, scope);
            return;
        }
        let Some(code) = code else {
            return;
        };
        match code {
            "BackboneElement" | "Element" if place.type_def.children.contains_key(def.path) => {
                let inner = Place {
                    parent: def.path,
                    ..place
                };
                self.nested_object(inner, item, at, scope);
            }
            "Resource" => match item.as_object() {
                Some(obj) => {
                    let contained = def.name == "contained";
                    self.resource(obj, at, contained.then_some(scope));
                }
                None => self.error(IssueType::Structure, "a resource must be a JSON object", at),
            },
            _ => {
                let Some((type_name, type_def)) = self.defs.types.get_key_value(code) else {
                    return;
                };
                if type_def.kind == Kind::Primitive {
                    self.primitive(code, def, item, at);
                    return;
                }
                let inner = Place {
                    type_name,
                    type_def,
                    parent: "",
                };
                let Some(obj) = self.nested_object(inner, item, at, scope) else {
                    return;
                };
                match code {
                    "Reference" => self.reference(def, code, obj, at, scope),
                    "Extension" => self.extension(obj, at),
                    "Coding" | "CodeableConcept" => {
                        if let Some(vs) = def.binding {
                            self.coded(vs, code, obj, at);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn nested_object<'v>(
        &mut self,
        place: Place,
        item: &'v Value,
        at: &str,
        scope: &Scope,
    ) -> Option<&'v Map<String, Value>> {
        match item {
            Value::Object(obj) => {
                self.object(place, obj, at, scope, false);
                Some(obj)
            }
            _ => {
                self.error(
                    IssueType::Structure,
                    format!(
                        "expected a JSON object ({}), not {}",
                        element_name(place),
                        json_kind(item)
                    ),
                    at,
                );
                None
            }
        }
    }

    fn primitive(&mut self, code: &str, def: &ElementDef, item: &Value, at: &str) {
        if let Err(message) = primitives::check(code, item) {
            self.error(IssueType::Value, message, at);
            return;
        }
        if code == "xhtml" {
            for message in xhtml::check(item.as_str().unwrap_or_default()) {
                self.error(IssueType::Value, message, at);
            }
        }
        if let (Some(vs), Some(text)) = (def.binding, item.as_str()) {
            let Some(set) = self.defs.value_sets.get(vs) else {
                return;
            };
            if !set.has_code(text) {
                self.error(
                    IssueType::CodeInvalid,
                    format!("`{text}` is not a code of {}", value_set_words(vs, set)),
                    at,
                );
            }
        }
    }

    /// A Coding or CodeableConcept with a required binding: its code must come from the
    /// value set (a CodeableConcept: at least one of its codings).
    fn coded(&mut self, vs: &str, code: &str, obj: &Map<String, Value>, at: &str) {
        let Some(set) = self.defs.value_sets.get(vs) else {
            return;
        };
        let in_set = |coding: &Map<String, Value>| {
            let system = coding.get("system").and_then(Value::as_str);
            let code = coding.get("code").and_then(Value::as_str);
            match (system, code) {
                (Some(s), Some(c)) => set.systems.get(s).is_some_and(|codes| codes.contains(c)),
                (None, Some(c)) => set.has_code(c),
                _ => false,
            }
        };
        let ok = match code {
            "Coding" => in_set(obj),
            _ => obj
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|codings| codings.iter().filter_map(Value::as_object).any(in_set)),
        };
        if !ok {
            self.error(
                IssueType::CodeInvalid,
                format!("the code must come from {}", value_set_words(vs, set)),
                at,
            );
        }
    }

    /// ext-1: an extension has either a value or extensions, not both and not neither.
    fn extension(&mut self, obj: &Map<String, Value>, at: &str) {
        let has_value = obj
            .keys()
            .any(|k| k.trim_start_matches('_').starts_with("value"));
        let has_extensions = obj.contains_key("extension");
        if has_value == has_extensions {
            let message = if has_value {
                "an extension has either a value or extensions, not both (ext-1)"
            } else {
                "an extension needs a value or extensions (ext-1)"
            };
            self.error(IssueType::Invariant, message, at);
        }
    }

    fn reference(
        &mut self,
        def: &ElementDef,
        code: &str,
        obj: &Map<String, Value>,
        at: &str,
        scope: &Scope,
    ) {
        let Some(reference) = obj.get("reference").and_then(Value::as_str) else {
            return;
        };
        let at = format!("{at}.reference");
        let targets: &[&str] = def
            .types
            .iter()
            .find(|t| t.code == code)
            .map(|t| t.targets.as_slice())
            .unwrap_or_default();
        if let Some(id) = reference.strip_prefix('#') {
            if !id.is_empty() && !scope.contained.contains(&id) {
                self.error(
                    IssueType::Invalid,
                    format!("`{reference}` names no contained resource of this resource"),
                    &at,
                );
            }
            return;
        }
        if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
            if primitives::check("uuid", &Value::String(reference.into())).is_err() {
                self.error(
                    IssueType::Invalid,
                    format!("`{uuid}` is not a UUID: write urn:uuid: and a lower-case UUID"),
                    &at,
                );
            }
            return;
        }
        if reference.starts_with("urn:oid:") {
            if primitives::check("oid", &Value::String(reference.into())).is_err() {
                self.error(
                    IssueType::Invalid,
                    format!("`{reference}` is not an OID"),
                    &at,
                );
            }
            return;
        }
        if reference.chars().any(char::is_whitespace) {
            self.error(
                IssueType::Invalid,
                "a reference may not contain whitespace",
                &at,
            );
            return;
        }
        // Relative (`Type/id`, `Type/id/_history/v`, `Type?criteria`) or absolute URL
        // (whose last two segments are read the same way).
        let relative = match reference.split_once("://") {
            Some((_, rest)) => match rest.split_once('/') {
                Some((_, path)) => path,
                None => return,
            },
            None => reference,
        };
        let absolute = relative.len() != reference.len();
        let (type_name, rest) = match relative.split_once(['/', '?']) {
            Some((t, _)) if relative.as_bytes().get(t.len()) == Some(&b'?') => (t, None),
            Some((t, rest)) => (t, Some(rest)),
            None if absolute => return,
            None => {
                self.error(
                    IssueType::Invalid,
                    format!("`{reference}` is not a reference: write Type/id, an absolute URL, urn:uuid: or #id"),
                    &at,
                );
                return;
            }
        };
        if absolute {
            // The type and id are the URL's last two segments (before any _history).
            let parts: Vec<&str> = relative.split('/').collect();
            let history = parts.iter().position(|p| *p == "_history");
            let end = history.unwrap_or(parts.len());
            if end < 2 || !self.defs.is_resource(parts[end - 2]) {
                return; // a URL that is not a FHIR RESTful one: nothing to check
            }
            self.target(parts[end - 2], targets, &at);
            return;
        }
        if !self.defs.is_resource(type_name) {
            self.error(
                IssueType::Invalid,
                format!("`{type_name}` in `{reference}` is not an R4 resource type"),
                &at,
            );
            return;
        }
        if let Some(rest) = rest {
            let mut parts = rest.split('/');
            let id = parts.next().unwrap_or_default();
            let valid_id = primitives::check("id", &Value::String(id.into())).is_ok();
            let tail: Vec<&str> = parts.collect();
            let valid_tail = match tail.as_slice() {
                [] => true,
                ["_history", v] => primitives::check("id", &Value::String((*v).into())).is_ok(),
                _ => false,
            };
            if !valid_id || !valid_tail {
                self.error(
                    IssueType::Invalid,
                    format!(
                        "`{reference}` is not Type/id: an id is 1 to 64 letters, digits, `-` or `.`"
                    ),
                    &at,
                );
                return;
            }
        }
        self.target(type_name, targets, &at);
    }

    /// A reference to a type the element's definition does not list is a warning, not an
    /// error: writes keep it (the server's own programs point `CarePlan.basedOn` at the
    /// referral ServiceRequest, which R4 lists only from R5 on); `$validate` reports it.
    fn target(&mut self, type_name: &str, targets: &[&str], at: &str) {
        if !targets.is_empty() && !targets.contains(&"Resource") && !targets.contains(&type_name) {
            let message = format!(
                "a reference to a {type_name} is not one R4 defines here: it may point to {}",
                or_list(targets)
            );
            if self.seen.insert((at.to_string(), message.clone())) {
                self.issues
                    .push(Issue::warning(IssueType::Invalid, message).at(at));
            }
        }
    }
}

/// `dateTime` -> `DateTime`, as in choice element names.
fn capitalised(code: &str) -> String {
    let mut chars = code.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn element_name(place: Place) -> String {
    if place.parent.is_empty() {
        place.type_name.to_string()
    } else {
        format!("{}.{}", place.type_name, place.parent)
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// "the value set administrative-gender (female, male, other, unknown)".
fn value_set_words(url: &str, set: &definitions::ValueSet) -> String {
    let name = url.rsplit('/').next().unwrap_or(url);
    let codes = set.codes();
    if codes.len() <= 12 {
        format!("the value set {name} ({})", codes.join(", "))
    } else {
        format!("the value set {name} ({url})")
    }
}

#[cfg(test)]
mod tests;
