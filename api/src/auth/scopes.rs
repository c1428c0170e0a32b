//! SMART on FHIR scopes, v1 (`patient/Observation.read`, `user/*.write`,
//! `system/Task.*`) and v2 (`patient/Observation.rs`, `user/CarePlan.cruds`, with a
//! search restriction as in `patient/Observation.rs?category=vital-signs`), and what
//! they grant for one interaction on one resource type.

/// Whose data a scope opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    /// The patient in context of the token (its `patient` claim) and nothing else.
    Patient,
    /// What the user may see (all of the tenant here: the server keeps no per-user
    /// access lists).
    User,
    /// A system acting for itself (backend services).
    System,
}

/// One of the SMART v2 permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Perm {
    fn bit(self) -> u8 {
        match self {
            Perm::Create => 1,
            Perm::Read => 2,
            Perm::Update => 4,
            Perm::Delete => 8,
            Perm::Search => 16,
        }
    }

    /// The letter of the permission in a v2 scope.
    pub fn letter(self) -> char {
        match self {
            Perm::Create => 'c',
            Perm::Read => 'r',
            Perm::Update => 'u',
            Perm::Delete => 'd',
            Perm::Search => 's',
        }
    }
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: Context,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    perms: u8,
    /// A v2 search restriction (`?category=vital-signs`): the parameters a resource must
    /// match.
    pub restriction: Vec<(String, String)>,
}

impl Scope {
    /// Parses one scope; `None` for scopes that are not about resources (`openid`,
    /// `fhirUser`, `launch/patient`, `offline_access`) or malformed ones.
    pub fn parse(s: &str) -> Option<Scope> {
        let (context, rest) = s.split_once('/')?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return None,
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (resource_type, perms) = rest.rsplit_once('.')?;
        let resource_type = match resource_type {
            "*" => None,
            t if fhir_mapping::resource_types::is_resource_type(t) => Some(t.to_string()),
            _ => return None,
        };
        let all = Perm::Create.bit()
            | Perm::Read.bit()
            | Perm::Update.bit()
            | Perm::Delete.bit()
            | Perm::Search.bit();
        let perms = match perms {
            // v1
            "read" => Perm::Read.bit() | Perm::Search.bit(),
            "write" => Perm::Create.bit() | Perm::Update.bit() | Perm::Delete.bit(),
            "*" => all,
            // v2: a subset of `cruds`, in that order
            letters => {
                let mut bits = 0u8;
                let mut last = 0usize;
                for c in letters.chars() {
                    let at = "cruds".find(c)? + 1;
                    if at <= last {
                        return None;
                    }
                    last = at;
                    bits |= 1 << (at - 1);
                }
                if bits == 0 {
                    return None;
                }
                bits
            }
        };
        let restriction = match query {
            None => Vec::new(),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?,
        };
        Some(Scope {
            context,
            resource_type,
            perms,
            restriction,
        })
    }

    /// Whether everything this scope grants is granted by `other` too (a client asks for
    /// scopes within those it was registered with).
    pub fn within(&self, other: &Scope) -> bool {
        self.context == other.context
            && other
                .resource_type
                .as_ref()
                .is_none_or(|t| self.resource_type.as_ref() == Some(t))
            && self.perms & !other.perms == 0
            && (other.restriction.is_empty() || other.restriction == self.restriction)
    }

    /// Whether this scope covers `perm` on `resource_type`.
    pub fn covers(&self, resource_type: &str, perm: Perm) -> bool {
        self.perms & perm.bit() != 0
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
    }
}

/// The scopes of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

/// What the scopes of a token grant for one interaction on one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Denied,
    Allowed {
        /// Only the compartment of the token's patient.
        patient_only: bool,
        /// A search restriction every resource must meet (empty: none).
        restriction: Vec<(String, String)>,
    },
}

impl Scopes {
    /// The resource scopes of a space-separated scope string (others are ignored).
    pub fn parse(s: &str) -> Scopes {
        Scopes(s.split_whitespace().filter_map(Scope::parse).collect())
    }

    /// What is granted for `perm` on `resource_type`: the widest context of the scopes
    /// that cover it, and, when every one of those is restricted, the restriction (the
    /// values of one parameter united when several scopes restrict it).
    pub fn grant(&self, resource_type: &str, perm: Perm) -> Grant {
        let covering: Vec<&Scope> = self
            .0
            .iter()
            .filter(|s| s.covers(resource_type, perm))
            .collect();
        let Some(widest) = covering.iter().map(|s| s.context).max() else {
            return Grant::Denied;
        };
        let covering: Vec<&Scope> = covering
            .into_iter()
            .filter(|s| s.context == widest)
            .collect();
        let restriction = if covering.iter().any(|s| s.restriction.is_empty()) {
            Vec::new()
        } else {
            unite(&covering)
        };
        Grant::Allowed {
            patient_only: widest == Context::Patient,
            restriction,
        }
    }

    /// Whether any scope opens data beyond one patient (user or system context).
    pub fn beyond_patient(&self) -> bool {
        self.0.iter().any(|s| s.context != Context::Patient)
    }

    /// The scopes as a space-separated string.
    pub fn to_scope_string(&self) -> String {
        self.0
            .iter()
            .map(|s| {
                let context = match s.context {
                    Context::Patient => "patient",
                    Context::User => "user",
                    Context::System => "system",
                };
                let perms: String = [
                    Perm::Create,
                    Perm::Read,
                    Perm::Update,
                    Perm::Delete,
                    Perm::Search,
                ]
                .iter()
                .filter(|p| s.perms & p.bit() != 0)
                .map(|p| p.letter())
                .collect();
                let mut out = format!(
                    "{context}/{}.{perms}",
                    s.resource_type.as_deref().unwrap_or("*")
                );
                if !s.restriction.is_empty() {
                    out.push('?');
                    out.push_str(&serde_urlencoded::to_string(&s.restriction).unwrap_or_default());
                }
                out
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The union of restricted scopes: when they restrict the same single parameter, its
/// values joined by commas (an OR); otherwise the first scope's restriction (the
/// narrowest reading: a resource that meets it meets one of them).
fn unite(scopes: &[&Scope]) -> Vec<(String, String)> {
    let same_param = scopes
        .iter()
        .all(|s| s.restriction.len() == 1 && s.restriction[0].0 == scopes[0].restriction[0].0);
    if same_param && scopes.len() > 1 {
        let values: Vec<&str> = scopes.iter().map(|s| s.restriction[0].1.as_str()).collect();
        vec![(scopes[0].restriction[0].0.clone(), values.join(","))]
    } else {
        scopes[0].restriction.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_syntax() {
        let s = Scopes::parse(
            "openid fhirUser launch/patient patient/Observation.read user/CarePlan.cruds system/*.rs bogus/Task.read patient/Nothing.read user/Task.sc",
        );
        assert_eq!(s.0.len(), 3, "{s:?}");
        assert_eq!(
            s.grant("Observation", Perm::Search),
            Grant::Allowed {
                patient_only: false,
                restriction: vec![]
            },
            "system/*.rs is wider than the patient scope"
        );
        assert_eq!(
            s.grant("CarePlan", Perm::Delete),
            Grant::Allowed {
                patient_only: false,
                restriction: vec![]
            }
        );
        assert_eq!(
            s.grant("Task", Perm::Create),
            Grant::Denied,
            "`sc` is out of order"
        );
        assert_eq!(s.grant("Patient", Perm::Update), Grant::Denied);
        assert_eq!(Scope::parse("user/Task.xyz"), None);
        assert_eq!(Scope::parse("user/Task."), None);
    }

    #[test]
    fn a_request_within_the_registered_scopes() {
        let allowed = Scope::parse("system/*.rs").expect("scope");
        let within = |s: &str| Scope::parse(s).expect("scope").within(&allowed);
        assert!(within("system/Task.rs"));
        assert!(within("system/*.read"));
        assert!(within("system/Observation.s"));
        assert!(!within("system/Task.cruds"));
        assert!(!within("user/Task.rs"));
        let narrow = Scope::parse("system/Task.r").expect("scope");
        assert!(!Scope::parse("system/*.r").expect("scope").within(&narrow));
    }

    #[test]
    fn patient_context_and_restrictions() {
        let s = Scopes::parse(
            "patient/Observation.rs?category=vital-signs patient/Observation.rs?category=survey patient/Task.ru",
        );
        assert_eq!(
            s.grant("Observation", Perm::Search),
            Grant::Allowed {
                patient_only: true,
                restriction: vec![("category".into(), "vital-signs,survey".into())]
            }
        );
        assert_eq!(
            s.grant("Task", Perm::Update),
            Grant::Allowed {
                patient_only: true,
                restriction: vec![]
            }
        );
        assert_eq!(s.grant("Task", Perm::Search), Grant::Denied);
        assert!(!s.beyond_patient());
        assert_eq!(
            Scopes::parse(&s.to_scope_string()),
            s,
            "{}",
            s.to_scope_string()
        );
    }
}
