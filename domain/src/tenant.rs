//! The clinic (tenant) every record belongs to.

use std::fmt;

/// A tenant key: 1 to 64 characters of lowercase ASCII letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a tenant key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant key is 1 to 64 characters of a-z, 0-9 and '-'")]
pub struct InvalidTenant;

impl TenantId {
    /// The tenant used until clinics are configured.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(s: &str) -> Result<Self, InvalidTenant> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(TenantId(s.to_string()))
        } else {
            Err(InvalidTenant)
        }
    }

    pub fn default_tenant() -> Self {
        TenantId(Self::DEFAULT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_keys_only() {
        assert!(TenantId::parse("clinic-1").is_ok());
        assert_eq!(TenantId::default_tenant().as_str(), "default");
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("Clinic").is_err());
        assert!(TenantId::parse("a b").is_err());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
    }
}
