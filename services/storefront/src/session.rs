//! The shopper's session as a sealed cookie: the API tokens and a CSRF secret, encrypted and
//! authenticated with AES-256-GCM under the configured key, so no page script can read the
//! tokens (the cookie is `HttpOnly`) and any replica with the key can read the session. CSRF
//! tokens are an HMAC of the session's secret under a key derived from the same one.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::config::SessionConfig;

/// The cookie's name.
pub const COOKIE: &str = "mercato_session";

/// Sealed cookies older than this are refused (the refresh token lives no longer anyway).
const MAX_AGE_SECS: i64 = 30 * 24 * 60 * 60;

/// Binds ciphertexts to their use, so a value sealed for something else never opens here.
const AAD: &[u8] = b"mercato storefront session v1";

/// What the cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Random per session; CSRF tokens are derived from it.
    pub csrf: String,
    /// Present once the shopper signed in.
    pub tokens: Option<Tokens>,
    /// When it was sealed first (unix seconds).
    pub created: i64,
}

/// A signed-in shopper's tokens, as the API issued them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    /// When the access token expires (unix seconds), from `expires_in` at issue.
    pub expires_at: i64,
    /// The shopper's name, for the page header.
    pub name: String,
}

impl Tokens {
    /// True when the access token is expired or about to be (within 30 s): refresh first.
    pub fn access_is_stale(&self) -> bool {
        now() + 30 >= self.expires_at
    }
}

impl Session {
    /// A fresh anonymous session with its own CSRF secret.
    pub fn new() -> Self {
        Self { csrf: random_token(), tokens: None, created: now() }
    }

    /// Signing in or out starts a new CSRF secret, so a token seen before is useless after.
    pub fn rotate(&mut self, tokens: Option<Tokens>) {
        self.csrf = random_token();
        self.tokens = tokens;
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// The keys derived from the configured one.
pub struct SessionKeys {
    seal: LessSafeKey,
    csrf: hmac::Key,
}

impl SessionKeys {
    /// Derives the sealing and CSRF keys from the 32-byte `master` key.
    pub fn new(master: &[u8; 32]) -> anyhow::Result<Self> {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, master);
        let seal_key = hmac::sign(&derive, b"mercato storefront: seal");
        let csrf_key = hmac::sign(&derive, b"mercato storefront: csrf");
        let unbound = UnboundKey::new(&AES_256_GCM, seal_key.as_ref())
            .map_err(|_| anyhow::anyhow!("cannot make an AES-256-GCM key"))?;
        Ok(Self {
            seal: LessSafeKey::new(unbound),
            csrf: hmac::Key::new(hmac::HMAC_SHA256, csrf_key.as_ref()),
        })
    }

    /// The key `config` names: `key`, or the file `key_file` (created when `generate_key`).
    pub fn from_config(config: &SessionConfig) -> anyhow::Result<Self> {
        let master = match (&config.key, &config.key_file) {
            (Some(key), _) => parse_key(key).map_err(|p| anyhow::anyhow!("session.key {p}"))?,
            (None, Some(path)) => load_or_create(path, config.generate_key)?,
            (None, None) => anyhow::bail!("session.key or session.key_file is required"),
        };
        Self::new(&master)
    }

    /// The cookie value for `session`: base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, session: &Session) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut data = serde_json::to_vec(session)?;
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut data)
            .map_err(|_| anyhow::anyhow!("cannot seal the session"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The session in a cookie value, or `None` when it was not sealed with this key, was
    /// tampered with, or is too old.
    pub fn open(&self, value: &str) -> Option<Session> {
        let mut sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let mut data = sealed.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&sealed).ok()?;
        let plain = self.seal.open_in_place(nonce, Aad::from(AAD), &mut data).ok()?;
        let session: Session = serde_json::from_slice(plain).ok()?;
        (now() - session.created <= MAX_AGE_SECS).then_some(session)
    }

    /// The CSRF token every form of `session` carries.
    pub fn csrf_token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, session.csrf.as_bytes()))
    }

    /// Whether `token` is `session`'s CSRF token (compared in constant time).
    pub fn csrf_matches(&self, session: &Session, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(tag) => hmac::verify(&self.csrf, session.csrf.as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// 32 bytes from base64 (standard or URL-safe, padded or not) or 64 hex digits.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).unwrap_or_default()).collect()
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "must be base64 or hex".to_owned())?
    };
    bytes.try_into().map_err(|b: Vec<u8>| format!("must be 32 bytes (it has {})", b.len()))
}

fn load_or_create(path: &Path, create: bool) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            parse_key(&text).map_err(|p| anyhow::anyhow!("the session key in {} {p}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut key = [0u8; 32];
            aws_lc_rs::rand::fill(&mut key)
                .map_err(|_| anyhow::anyhow!("no randomness for a session key"))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            kit::signing::write_private(path, &format!("{}\n", STANDARD.encode(key)))
                .with_context(|| format!("cannot write the session key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new session key");
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read the session key {}: {e}", path.display())),
    }
}

/// 16 random bytes, base64url: session CSRF secrets and checkout idempotency keys.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // aws-lc's generator fails only when the OS has no randomness at all; a zero secret then
    // would be guessable, so fall back to fastrand-free UUIDv4 (also OS-random).
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = *uuid::Uuid::new_v4().as_bytes();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> SessionKeys {
        SessionKeys::new(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_session_opens_with_its_key_only_and_hides_the_tokens() {
        let mut session = Session::new();
        session.tokens = Some(Tokens {
            access: "the-access-token".into(),
            refresh: "the-refresh-token".into(),
            expires_at: now() + 900,
            name: "Ada".into(),
        });
        let sealed = keys(1).seal(&session).unwrap();
        assert!(!sealed.contains("access"));
        let opened = keys(1).open(&sealed).unwrap();
        assert_eq!(opened.tokens.unwrap().refresh, "the-refresh-token");
        assert!(keys(2).open(&sealed).is_none());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(keys(1).open(&String::from_utf8(tampered).unwrap()).is_none());
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_and_change_on_rotation() {
        let keys = keys(3);
        let mut session = Session::new();
        let token = keys.csrf_token(&session);
        assert!(keys.csrf_matches(&session, &token));
        assert!(!keys.csrf_matches(&Session::new(), &token));
        assert!(!keys.csrf_matches(&session, "not-a-token"));
        session.rotate(None);
        assert!(!keys.csrf_matches(&session, &token));
    }

    #[test]
    fn keys_parse_from_base64_and_hex() {
        assert_eq!(parse_key(&"01".repeat(32)).unwrap(), [1u8; 32]);
        assert_eq!(parse_key(&STANDARD.encode([7u8; 32])).unwrap(), [7u8; 32]);
        assert!(parse_key("AAAA").unwrap_err().contains("32 bytes"));
    }
}
