//! Refresh tokens: opaque, 256 random bits, stored only as their SHA-256. Access tokens are
//! signed with `kit::signing`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use kit::signing::{AccessToken, SigningKey, TokenIssuer};

/// A new opaque refresh token: 256 random bits, URL-safe.
pub(crate) fn new_refresh_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness for a token"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a refresh token (or client secret): hex SHA-256. The token has 256 bits
/// of entropy, so a fast hash is enough.
pub(crate) fn hash_token(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_hash_stably() {
        let a = new_refresh_token().unwrap();
        assert_ne!(a, new_refresh_token().unwrap());
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
    }
}
