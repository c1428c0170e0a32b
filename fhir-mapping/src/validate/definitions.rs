//! The elements of every R4 type and the codes of its required bindings, read once from
//! the generated `r4.txt` (see `fhir-mapping/generate/r4_definitions.py`).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

const TABLE: &str = include_str!("r4.txt");

/// What kind of type a definition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Resource,
    Complex,
    Primitive,
}

/// One type an element may take, with the resource types a Reference may point to.
#[derive(Debug)]
pub(crate) struct TypeRef {
    pub code: &'static str,
    pub targets: Vec<&'static str>,
}

/// An element of a type: its name below its parent (with `[x]` for a choice), its
/// cardinality, its types, and its required binding when the codes are known.
#[derive(Debug)]
pub(crate) struct ElementDef {
    /// The path below the type (`contact.relationship`).
    pub path: &'static str,
    /// The last part of the path (`relationship`, `value[x]`).
    pub name: &'static str,
    pub min: u32,
    pub many: bool,
    pub types: Vec<TypeRef>,
    /// `#item`: the element has the definition (and children) of `item`.
    pub content_reference: Option<&'static str>,
    pub binding: Option<&'static str>,
}

impl ElementDef {
    pub fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }
}

/// A type: its kind and, below each parent path (`""` for the type itself), its
/// elements.
#[derive(Debug)]
pub(crate) struct TypeDef {
    pub kind: Kind,
    pub children: HashMap<&'static str, Vec<ElementDef>>,
}

/// A required value set: its codes by code system.
#[derive(Debug, Default)]
pub(crate) struct ValueSet {
    pub systems: HashMap<&'static str, HashSet<&'static str>>,
}

impl ValueSet {
    pub fn has_code(&self, code: &str) -> bool {
        self.systems.values().any(|codes| codes.contains(code))
    }

    /// Its codes, sorted, for a message.
    pub fn codes(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self.systems.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[derive(Debug)]
pub(crate) struct Definitions {
    pub types: HashMap<&'static str, TypeDef>,
    pub value_sets: HashMap<&'static str, ValueSet>,
}

impl Definitions {
    pub fn get() -> &'static Definitions {
        static DEFINITIONS: LazyLock<Definitions> = LazyLock::new(|| Definitions::parse(TABLE));
        &DEFINITIONS
    }

    /// A concrete resource type (not `Resource` or `DomainResource`).
    pub fn is_resource(&self, name: &str) -> bool {
        name != "Resource"
            && name != "DomainResource"
            && self
                .types
                .get(name)
                .is_some_and(|t| t.kind == Kind::Resource)
    }

    fn parse(table: &'static str) -> Definitions {
        let mut types: HashMap<&'static str, TypeDef> = HashMap::new();
        let mut value_sets: HashMap<&'static str, ValueSet> = HashMap::new();
        let mut current: Option<&'static str> = None;
        for line in table.lines() {
            let mut fields = line.split('\t');
            match fields.next() {
                Some("T") => {
                    let name = fields.next().unwrap_or_default();
                    let kind = match fields.next() {
                        Some("resource") => Kind::Resource,
                        Some("primitive") => Kind::Primitive,
                        _ => Kind::Complex,
                    };
                    types.insert(
                        name,
                        TypeDef {
                            kind,
                            children: HashMap::new(),
                        },
                    );
                    current = Some(name);
                }
                Some("E") => {
                    let (Some(t), Some(path), Some(min), Some(max), Some(type_list)) = (
                        current.and_then(|c| types.get_mut(c)),
                        fields.next(),
                        fields.next(),
                        fields.next(),
                        fields.next(),
                    ) else {
                        continue;
                    };
                    let (parent, name) = path.rsplit_once('.').unwrap_or(("", path));
                    let (content_reference, types_of) = match type_list.strip_prefix('#') {
                        Some(target) => (Some(target), Vec::new()),
                        None => (
                            None,
                            type_list
                                .split(',')
                                .map(|t| match t.split_once(':') {
                                    Some((code, targets)) => TypeRef {
                                        code,
                                        targets: targets.split('|').collect(),
                                    },
                                    None => TypeRef {
                                        code: t,
                                        targets: Vec::new(),
                                    },
                                })
                                .collect(),
                        ),
                    };
                    t.children.entry(parent).or_default().push(ElementDef {
                        path,
                        name,
                        min: min.parse().unwrap_or(0),
                        many: max != "1" && max != "0",
                        types: types_of,
                        content_reference,
                        binding: fields.next(),
                    });
                }
                Some("V") => {
                    let (Some(url), Some(system)) = (fields.next(), fields.next()) else {
                        continue;
                    };
                    value_sets
                        .entry(url)
                        .or_default()
                        .systems
                        .entry(system)
                        .or_default()
                        .extend(fields);
                }
                _ => {}
            }
        }
        Definitions { types, value_sets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_r4_type_and_its_bindings() {
        let d = Definitions::get();
        assert!(d.is_resource("Patient"));
        assert!(!d.is_resource("DomainResource"));
        assert!(!d.is_resource("HumanName"));
        let resources = d
            .types
            .values()
            .filter(|t| t.kind == Kind::Resource)
            .count();
        assert_eq!(
            resources, 148,
            "146 resource types and the two abstract ones"
        );
        let patient = &d.types["Patient"];
        let gender = patient.children[""]
            .iter()
            .find(|e| e.name == "gender")
            .expect("Patient.gender");
        let vs = &d.value_sets[gender.binding.expect("required binding")];
        assert_eq!(vs.codes(), ["female", "male", "other", "unknown"]);
        let link_other = patient.children["link"]
            .iter()
            .find(|e| e.name == "other")
            .expect("Patient.link.other");
        assert_eq!(link_other.min, 1);
        assert_eq!(link_other.types[0].targets, ["Patient", "RelatedPerson"]);
        let q = &d.types["Questionnaire"];
        let nested = q.children["item"]
            .iter()
            .find(|e| e.name == "item")
            .expect("Questionnaire.item.item");
        assert_eq!(nested.content_reference, Some("item"));
    }
}
