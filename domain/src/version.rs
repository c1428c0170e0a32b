//! Resource version numbers.

use std::fmt;

/// A resource version: 1 for the first version, then +1 on every update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(u32);

/// Why a version id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a version id is a positive whole number")]
pub struct InvalidVersion;

impl VersionId {
    pub const FIRST: VersionId = VersionId(1);

    /// Parses `3` (as in `_history/3`).
    pub fn parse(s: &str) -> Result<Self, InvalidVersion> {
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && !s.starts_with('+') && !s.starts_with('0') => Ok(VersionId(n)),
            _ => Err(InvalidVersion),
        }
    }

    /// Parses an entity tag as used in `ETag` and `If-Match`: `W/"3"` or `"3"`.
    pub fn parse_etag(s: &str) -> Result<Self, InvalidVersion> {
        let s = s.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        let inner = s
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .ok_or(InvalidVersion)?;
        Self::parse(inner)
    }

    pub fn from_stored(n: i64) -> Result<Self, InvalidVersion> {
        u32::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .map(VersionId)
            .ok_or(InvalidVersion)
    }

    pub fn next(self) -> VersionId {
        VersionId(self.0.saturating_add(1))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The weak entity tag `W/"n"`.
    pub fn etag(self) -> String {
        format!("W/\"{}\"", self.0)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(VersionId::parse("3").map(VersionId::get), Ok(3));
        assert!(VersionId::parse("0").is_err());
        assert!(VersionId::parse("01").is_err());
        assert!(VersionId::parse("-1").is_err());
        assert!(VersionId::parse("x").is_err());
        assert_eq!(VersionId::parse_etag("W/\"7\"").map(VersionId::get), Ok(7));
        assert_eq!(VersionId::parse_etag("\"7\"").map(VersionId::get), Ok(7));
        assert!(VersionId::parse_etag("7").is_err());
        assert_eq!(VersionId::FIRST.next().etag(), "W/\"2\"");
        assert!(VersionId::from_stored(0).is_err());
    }
}
