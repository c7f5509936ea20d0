//! Signing access tokens: the Ed25519 key (generated, or read from a PKCS#8 PEM), EdDSA JWTs
//! with a `kid`, and the JSON Web Key Set that verifies them. The users service issues tokens
//! with it; `kit::testing` mints tokens for other services' tests the same way.

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::auth::{AUDIENCE, Claims, ISSUER, Role};

/// The Ed25519 key that signs access tokens.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh key, with its PKCS#8 PEM (to persist).
    pub fn generate() -> anyhow::Result<(Self, String)> {
        let document = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
        let der = document.as_ref();
        Ok((Self::from_pkcs8_der(der)?, to_pem(der)))
    }

    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| anyhow::anyhow!("the signing key is not a PEM-encoded PKCS#8 Ed25519 key"))?;
        Self::from_pkcs8_der(&der)
    }

    fn from_pkcs8_der(der: &[u8]) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| anyhow::anyhow!("the signing key is not a PKCS#8 Ed25519 key"))?;
        let public = pair.public_key().as_ref();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]);
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(public),
            }),
        };
        Ok(Self { kid, encoding: EncodingKey::from_ed_der(der), jwk })
    }

    /// Reads the key at `path`; when absent and `create` is set, generates one and writes it
    /// there (mode 0600).
    pub fn load_or_create(path: &Path, create: bool) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(&pem),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let (key, pem) = Self::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, &pem)?;
                tracing::info!(path = %path.display(), kid = %key.kid, "generated a new token signing key");
                Ok(key)
            }
            Err(e) => Err(anyhow::anyhow!("cannot read the signing key {}: {e}", path.display())),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Signs access tokens and publishes the key set that verifies them.
pub struct TokenIssuer {
    key: SigningKey,
    access_ttl: Duration,
    service_ttl: Duration,
}

/// A freshly signed access token.
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, access_ttl: Duration, service_ttl: Duration) -> Self {
        Self { key, access_ttl, service_ttl }
    }

    /// An access token for a person.
    pub fn access_token(&self, user_id: uuid::Uuid, role: Role) -> anyhow::Result<AccessToken> {
        self.sign(user_id.to_string(), role, self.access_ttl)
    }

    /// An access token for another mercato service.
    pub fn service_token(&self, client_id: &str) -> anyhow::Result<AccessToken> {
        self.sign(client_id.to_owned(), Role::Service, self.service_ttl)
    }

    fn sign(&self, sub: String, role: Role, ttl: Duration) -> anyhow::Result<AccessToken> {
        let issued = chrono::Utc::now();
        let now = issued.timestamp();
        let claims = Claims {
            sub,
            role,
            iat: now,
            iat_ms: Some(issued.timestamp_millis()),
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key.encoding)?;
        Ok(AccessToken { token, expires_in: ttl.as_secs() })
    }

    /// The public keys, as served at `/api/v1/auth/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.key.jwk.clone()] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{TokenError, TokenVerifier};

    fn issuer() -> TokenIssuer {
        let (key, _) = SigningKey::generate().unwrap();
        TokenIssuer::new(key, Duration::from_secs(900), Duration::from_secs(300))
    }

    #[tokio::test]
    async fn issued_tokens_verify_against_the_published_key_set() {
        let issuer = issuer();
        let user = uuid::Uuid::now_v7();
        let token = issuer.access_token(user, Role::Admin).unwrap();
        let claims = TokenVerifier::with_keys(&issuer.jwks()).verify(&token.token).await.unwrap();
        assert_eq!(claims.sub, user.to_string());
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(token.expires_in, 900);
    }

    #[tokio::test]
    async fn a_revoked_users_tokens_are_refused_and_others_still_verify() {
        let issuer = issuer();
        let verifier = TokenVerifier::with_keys(&issuer.jwks());
        let (gone, kept) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let gone_token = issuer.access_token(gone, Role::Customer).unwrap().token;
        let kept_token = issuer.access_token(kept, Role::Customer).unwrap().token;
        verifier.revocations().revoke_all(gone);
        assert!(matches!(verifier.verify(&gone_token).await, Err(TokenError::Revoked)));
        let claims = verifier.verify(&kept_token).await.unwrap();
        assert!(claims.iat_ms.is_some_and(|ms| ms / 1000 == claims.iat), "issued at, to the millisecond");
    }

    #[tokio::test]
    async fn another_keys_tokens_are_refused() {
        let token = issuer().access_token(uuid::Uuid::now_v7(), Role::Customer).unwrap();
        let err = TokenVerifier::with_keys(&issuer().jwks()).verify(&token.token).await.unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey));
    }

    #[test]
    fn pem_round_trip_keeps_the_key_id() {
        let (key, pem) = SigningKey::generate().unwrap();
        assert_eq!(SigningKey::from_pem(&pem).unwrap().kid(), key.kid());
    }

    #[test]
    fn key_file_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        assert!(SigningKey::load_or_create(&path, false).is_err(), "no file and no create → error");
        let first = SigningKey::load_or_create(&path, true).unwrap();
        let second = SigningKey::load_or_create(&path, true).unwrap();
        assert_eq!(first.kid(), second.kid());
    }
}
