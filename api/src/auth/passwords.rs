//! Passwords and one-time secrets: Argon2id strings for passwords, SHA-256 for
//! high-entropy secrets (codes, tokens), the policy of a new password, and codes from
//! an alphabet without look-alike characters.
//!
//! Argon2id parameters: m = 19,456 KiB (19 MiB), t = 8, p = 1 ([`PARAMS`]). Measured on
//! the project's 2-core machine (argon2 and blake2 built at `opt-level = 3` in every
//! profile, see the workspace's Cargo.toml): about 75-80 ms per hash or check, about
//! 105 ms for the first of a process (its memory not yet mapped)
//! (`a_hash_costs_what_the_documentation_says`, ignored: `cargo test -p api --lib --
//! --ignored a_hash_costs --nocapture`). OWASP's floor is m = 19 MiB, t = 2; more
//! passes rather than more memory keep 19 MiB per concurrent sign-in.

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::ApiError;

/// Memory in KiB, passes, lanes.
pub const PARAMS: (u32, u32, u32) = (19_456, 8, 1);

/// The fewest and most characters of a password.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 128;

/// The characters of codes: no 0/O, 1/I/L.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn hasher() -> Result<Argon2<'static>, ApiError> {
    let (m, t, p) = PARAMS;
    let params = Params::new(m, t, p, None)
        .map_err(|_| ApiError::internal("the Argon2 parameters are not valid"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The Argon2id string (PHC format, random 16-byte salt) of a password.
pub fn hash(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt)
        .map_err(|_| ApiError::internal("no random salt could be drawn"))?;
    let hashed = hasher()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| ApiError::internal("the password could not be hashed"))?;
    Ok(hashed.to_string())
}

/// Whether `password` is the one `hash` was made of (the parameters are the hash's
/// own); `false` for a string that is no Argon2 hash.
pub fn verify(hash: &str, password: &str) -> bool {
    hasher()
        .map(|h| h.verify_password(password.as_bytes(), hash).is_ok())
        .unwrap_or(false)
}

/// A hash of a random password nobody knows, made once with [`PARAMS`].
static DUMMY: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut secret = [0u8; 24];
    aws_lc_rs::rand::fill(&mut secret).ok()?;
    hash(&hex(&secret)).ok()
});

/// Spends the time of a [`verify`] when there is no account to check against, so
/// that the answer's timing does not tell whether an account exists. Always `false`.
pub fn dummy_verify(password: &str) -> bool {
    match DUMMY.as_deref() {
        Some(h) => {
            let _ = verify(h, password);
        }
        None => {
            let _ = hash(password);
        }
    }
    false
}

/// Makes the dummy hash now (at start), so that the first sign-in of an unknown name
/// costs no more than any other.
pub fn warm() {
    LazyLock::force(&DUMMY);
}

/// The policy of a new password: 10 to 128 characters, not among the passwords people
/// choose most (zxcvbn's estimate, with the username as a known word, at least 3 of
/// 4), and not containing the username. The error says what to change.
pub fn check_new(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(format!("a password has at least {MIN_LEN} characters"));
    }
    if chars > MAX_LEN {
        return Err(format!("a password has at most {MAX_LEN} characters"));
    }
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
        return Err("a password must not contain the username".into());
    }
    let estimate = zxcvbn::zxcvbn(password, &[name.as_str()]);
    if u8::from(estimate.score()) < 3 {
        return Err(
            "this password is too easy to guess: use a longer one, such as a few unrelated words"
                .into(),
        );
    }
    Ok(())
}

/// The SHA-256 of a high-entropy secret (a code, a token), as lower-case hex: how such
/// secrets are stored.
pub fn hash_secret(secret: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    hex(d.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random code of `len` characters of [`CODE_ALPHABET`] (each uniformly drawn: bytes
/// past the largest multiple of the alphabet's size are drawn again).
pub fn random_code(len: usize) -> Result<String, ApiError> {
    let n = CODE_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf)
            .map_err(|_| ApiError::internal("no random code could be drawn"))?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(CODE_ALPHABET[usize::from(b) % n]));
            }
        }
    }
    Ok(out)
}

/// A code as a person typed it: upper case, without spaces and dashes.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery staple").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=8,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery staple"));
        assert!(!verify(&h, "correct horse battery stapl"));
        assert!(!verify("not a hash", "x"));
        // salted: the same password twice gives two strings
        assert_ne!(h, hash("correct horse battery staple").unwrap_or_default());
        assert!(!dummy_verify("correct horse battery staple"));
    }

    #[test]
    fn the_dummy_hash_has_the_same_cost() {
        let dummy = DUMMY.as_deref().unwrap_or_default();
        let params = |h: &str| h.split('$').nth(3).unwrap_or_default().to_string();
        let real = hash("x").unwrap_or_default();
        assert_eq!(params(dummy), params(&real));
        assert_eq!(params(&real), "m=19456,t=8,p=1");
    }

    /// The cost of one hash and one check (for the parameters' documentation).
    #[test]
    #[ignore]
    fn a_hash_costs_what_the_documentation_says() {
        let started = std::time::Instant::now();
        let h = hash("correct horse battery staple").unwrap_or_default();
        let hashed = started.elapsed();
        let checks: Vec<std::time::Duration> = (0..5)
            .map(|_| {
                let started = std::time::Instant::now();
                assert!(verify(&h, "correct horse battery staple"));
                started.elapsed()
            })
            .collect();
        eprintln!("first hash {hashed:?}, then checks {checks:?}");
        assert!(checks.iter().all(|c| c.as_millis() < 1000));
    }

    #[test]
    fn the_policy_refuses_short_long_common_and_named_passwords() {
        assert!(check_new("short", "ann").is_err());
        assert!(check_new(&"x".repeat(129), "ann").is_err());
        for common in ["password123", "1234567890", "qwertyuiop", "iloveyou12"] {
            assert!(check_new(common, "ann").is_err(), "{common}");
        }
        assert!(check_new("Jordanlee-walks-42x", "jordanlee").is_err());
        assert!(check_new("ann-bicycle-lantern-47", "ann2").is_ok());
        assert!(check_new("violet kettle harbour tram", "ann").is_ok());
    }

    #[test]
    fn secrets_are_hashed_to_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let code = random_code(400).unwrap_or_default();
        assert_eq!(code.len(), 400);
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert_ne!(random_code(8).ok(), random_code(8).ok());
        assert_eq!(normalize_code(" abcd-efgh "), "ABCDEFGH");
    }
}
