//! Passwords: 8 to 1024 characters, hashed with argon2id; never stored or logged in clear.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted, in characters as the API documents it (at most 4 KiB, so hashing
/// cost stays bounded).
pub const MAX_LENGTH: usize = 1024;

/// A password that meets the length rules. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(****)")
    }
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if length < MIN_LENGTH {
            return Err(format!("must be at least {MIN_LENGTH} characters"));
        }
        if length > MAX_LENGTH {
            return Err(format!("must be at most {MAX_LENGTH} characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password in clear, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// argon2id cost parameters. The defaults are OWASP's minimum (19 MiB, 2 passes).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHasher {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

impl PasswordHasher {
    fn argon2(&self) -> Result<Argon2<'static>, argon2::Error> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash = self
            .argon2()
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        Ok(hash.to_string())
    }

    /// True when `candidate` matches `phc` (whatever parameters it was hashed with).
    pub fn verify(&self, phc: &str, candidate: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok()
    }

    /// Spends the time of one verification, so unknown emails answer as slowly as wrong passwords.
    pub fn verify_dummy(&self, candidate: &str) {
        static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let hasher = *self;
        if let Some(phc) = DUMMY.get_or_init(|| hasher.hash(&Password("dummy-password".into())).ok()) {
            let _ = self.verify(phc, candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher { memory_kib: 64, iterations: 1, parallelism: 1 }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("ééééééé").is_err(), "length counts characters, not bytes");
    }

    #[test]
    fn length_is_bounded_in_characters_as_the_api_documents() {
        assert!(Password::parse(&"é".repeat(1024)).is_ok(), "1024 characters (2048 bytes)");
        assert!(Password::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hasher = cheap();
        let phc = hasher.hash(&Password::parse("correct horse").unwrap()).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(hasher.verify(&phc, "correct horse"));
        assert!(!hasher.verify(&phc, "correct horsE"));
    }

    #[test]
    fn same_password_hashes_differently_each_time() {
        let hasher = cheap();
        let p = Password::parse("correct horse").unwrap();
        assert_ne!(hasher.hash(&p).unwrap(), hasher.hash(&p).unwrap());
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert_eq!(format!("{:?}", Password::parse("secret-secret").unwrap()), "Password(****)");
    }
}
