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
        let jwk = public_jwk(pair.public_key().as_ref());
        let kid = jwk.common.key_id.clone().unwrap_or_default();
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

    /// The public half, as the JWKS publishes it.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

/// The public keys of every PEM block in `pem`, as a JWKS publishes them: an Ed25519 private key
/// (`PRIVATE KEY`, PKCS#8) or public key (`PUBLIC KEY`, SPKI, what `openssl pkey -pubout`
/// writes). A users service publishes these beside its signing key during a key rotation (the
/// next key before it signs with it, the previous one until its tokens have expired), so a
/// token is verified whichever replica's key set a verifier fetched.
pub fn published_keys(pem: &str) -> anyhow::Result<Vec<Jwk>> {
    let mut keys = Vec::new();
    let mut block: Option<(String, String)> = None;
    for line in pem.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            block = Some((label.to_owned(), String::new()));
        } else if line.starts_with("-----END ") {
            let (label, body) =
                block.take().ok_or_else(|| anyhow::anyhow!("an END line without its BEGIN"))?;
            let der =
                STANDARD.decode(&body).map_err(|_| anyhow::anyhow!("a {label} block that is not base64"))?;
            keys.push(match label.as_str() {
                "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der)?.jwk,
                "PUBLIC KEY" => public_jwk(spki_ed25519(&der)?),
                other => anyhow::bail!("a {other} block: expected PRIVATE KEY or PUBLIC KEY (Ed25519)"),
            });
        } else if let Some((_, body)) = block.as_mut() {
            body.push_str(line);
        } else {
            anyhow::bail!("text outside a PEM block");
        }
    }
    if block.is_some() {
        anyhow::bail!("a PEM block without its END line");
    }
    if keys.is_empty() {
        anyhow::bail!("no PEM key in it");
    }
    Ok(keys)
}

/// [`published_keys`] of the file at `path`, naming the file in errors.
pub fn load_published_keys(path: &Path) -> anyhow::Result<Vec<Jwk>> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the published keys file {}: {e}", path.display()))?;
    published_keys(&pem).map_err(|e| anyhow::anyhow!("the published keys file {}: {e}", path.display()))
}

/// The 32-byte Ed25519 key of a SubjectPublicKeyInfo (RFC 8410: a fixed 12-byte prefix).
fn spki_ed25519(der: &[u8]) -> anyhow::Result<&[u8]> {
    const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    match der.strip_prefix(&PREFIX) {
        Some(key) if key.len() == 32 => Ok(key),
        _ => anyhow::bail!("a PUBLIC KEY that is not an Ed25519 key"),
    }
}

/// The JWK of an Ed25519 public key; its `kid` is derived from the key, as the signer's is.
fn public_jwk(public: &[u8]) -> Jwk {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
    let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]);
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public),
        }),
    }
}

#[cfg(unix)]
/// Writes a new secret file readable by its owner only (0600); fails if the file exists, so a
/// secret is never overwritten.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
/// Writes a new secret file readable by its owner only (0600); fails if the file exists, so a
/// secret is never overwritten.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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
    /// Other keys the key set publishes (a rotation's next or previous key), never signing.
    published: Vec<Jwk>,
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
        Self { key, published: Vec::new(), access_ttl, service_ttl }
    }

    /// Publishes `keys` in the key set beside the signing key (see [`published_keys`]); the
    /// signing key itself, if among them, is listed once.
    pub fn with_published_keys(mut self, keys: Vec<Jwk>) -> Self {
        for key in keys {
            let kid = &key.common.key_id;
            if *kid != self.key.jwk.common.key_id && self.published.iter().all(|k| k.common.key_id != *kid) {
                self.published.push(key);
            }
        }
        self
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

    /// The public keys, as served at `/api/v1/auth/jwks.json`: the signing key first, then the
    /// published ones.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: std::iter::once(&self.key.jwk).chain(&self.published).cloned().collect() }
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

    /// The public half of `key` as `openssl pkey -pubout` writes it.
    fn public_pem(key: &SigningKey) -> String {
        let AlgorithmParameters::OctetKeyPair(params) = &key.jwk().algorithm else { unreachable!() };
        let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend(URL_SAFE_NO_PAD.decode(&params.x).unwrap());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki))
    }

    #[tokio::test]
    async fn a_rotation_verifies_every_token_whichever_replicas_key_set_was_fetched() {
        let (old, old_pem) = SigningKey::generate().unwrap();
        let (new, new_pem) = SigningKey::generate().unwrap();
        let ttl = Duration::from_secs(900);
        // Mid-rotation: one replica still signs with the old key and publishes the next one, the
        // other already signs with the new key and publishes the previous one.
        let behind = TokenIssuer::new(SigningKey::from_pem(&old_pem).unwrap(), ttl, ttl)
            .with_published_keys(published_keys(&public_pem(&new)).unwrap());
        let ahead = TokenIssuer::new(SigningKey::from_pem(&new_pem).unwrap(), ttl, ttl)
            .with_published_keys(published_keys(&old_pem).unwrap());
        assert_eq!(behind.jwks().keys.len(), 2);
        let user = uuid::Uuid::now_v7();
        let tokens = [
            behind.access_token(user, Role::Customer).unwrap(),
            ahead.access_token(user, Role::Customer).unwrap(),
        ];
        for key_set in [behind.jwks(), ahead.jwks()] {
            let verifier = TokenVerifier::with_keys(&key_set);
            for token in &tokens {
                assert_eq!(verifier.verify(&token.token).await.unwrap().sub, user.to_string());
            }
        }
        // Once the old key's tokens have expired it is no longer published, and refused.
        let after = TokenIssuer::new(new, ttl, ttl);
        let err = TokenVerifier::with_keys(&after.jwks()).verify(&tokens[0].token).await.unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey));
        assert_ne!(old.kid(), after.jwks().keys[0].common.key_id.as_deref().unwrap());
    }

    #[test]
    fn published_keys_read_private_and_public_pems_and_list_each_key_once() {
        let (key, pem) = SigningKey::generate().unwrap();
        let (other, other_pem) = SigningKey::generate().unwrap();
        let both = format!("{}\n{other_pem}", public_pem(&key));
        let keys = published_keys(&both).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect();
        assert_eq!(kids, [key.kid(), other.kid()]);
        // RFC 8410's example public key.
        let rfc = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let AlgorithmParameters::OctetKeyPair(params) = &published_keys(rfc).unwrap()[0].algorithm else {
            panic!()
        };
        assert_eq!(URL_SAFE_NO_PAD.decode(&params.x).unwrap()[..4], [0x19, 0xbf, 0x44, 0x09]);
        // The signing key among the published ones is listed once.
        let issuer = TokenIssuer::new(SigningKey::from_pem(&pem).unwrap(), Duration::ZERO, Duration::ZERO)
            .with_published_keys(published_keys(&format!("{pem}{other_pem}{other_pem}")).unwrap());
        assert_eq!(issuer.jwks().keys.len(), 2);
    }

    #[test]
    fn published_keys_name_what_is_wrong() {
        let cases = [
            ("", "no PEM key"),
            ("hello", "outside a PEM block"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "without its END"),
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "RSA PRIVATE KEY"),
            ("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n", "not base64"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not an Ed25519 key"),
        ];
        for (pem, expected) in cases {
            let err = published_keys(pem).unwrap_err().to_string();
            assert!(err.contains(expected), "{pem:?}: {err}");
        }
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
