//! Service-to-service credentials: a configured client id and secret buy a short-lived token
//! with role `service`.

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::tokens::{AccessToken, TokenIssuer, hash_token};

/// Why no service token was issued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceTokenError {
    #[error("unknown client or wrong secret")]
    Refused,
    #[error("signing the token: {0}")]
    Signing(anyhow::Error),
}

/// The configured service clients and the issuer of their tokens.
#[derive(Clone)]
pub(crate) struct ServiceTokens {
    issuer: Arc<TokenIssuer>,
    /// client id → SHA-256 of its secret.
    clients: Arc<BTreeMap<String, String>>,
}

impl ServiceTokens {
    /// `clients`: client id → secret, as configured.
    pub fn new(issuer: Arc<TokenIssuer>, clients: &BTreeMap<String, String>) -> Self {
        let clients = clients.iter().map(|(id, secret)| (id.clone(), hash_token(secret))).collect();
        Self { issuer, clients: Arc::new(clients) }
    }

    /// A service token for `client_id` when `client_secret` is its secret.
    pub fn issue(&self, client_id: &str, client_secret: &str) -> Result<AccessToken, ServiceTokenError> {
        let presented = hash_token(client_secret);
        // Compare digests in constant time; an unknown client costs the same comparison.
        let matches = match self.clients.get(client_id) {
            Some(expected) => expected.as_bytes().ct_eq(presented.as_bytes()).into(),
            None => {
                let _ = presented.as_bytes().ct_eq(presented.as_bytes());
                false
            }
        };
        if !matches {
            return Err(ServiceTokenError::Refused);
        }
        self.issuer.service_token(client_id).map_err(ServiceTokenError::Signing)
    }
}
