//! The test token issuer stands in for the users service: a remote verifier fetches its key
//! set over HTTP and accepts its tokens; a service token is handed to any client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::time::Duration;

use kit::auth::{Role, ServiceCredentials, TokenVerifier};
use kit::client::ServiceClient;
use kit::config::ClientConfig;
use kit::testing::TestAuth;

#[tokio::test]
async fn tokens_it_mints_verify_against_the_key_set_it_serves() {
    let auth = TestAuth::start().await;
    let users = ServiceClient::new("users", auth.url(), ClientConfig::default());
    let verifier = TokenVerifier::remote(users.clone(), Duration::from_secs(30));
    let user = uuid::Uuid::now_v7();
    let claims = verifier.verify(&auth.admin(user)).await.unwrap();
    assert_eq!((claims.sub, claims.role), (user.to_string(), Role::Admin));
    assert_eq!(verifier.verify(&auth.customer(user)).await.unwrap().role, Role::Customer);

    let credentials = ServiceCredentials::new(users, "orders", "any secret at all");
    let token = credentials.token().await.unwrap();
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), ("orders", Role::Service));
}
