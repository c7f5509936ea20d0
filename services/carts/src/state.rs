//! What the handlers share: the cart use cases and the token verifier. Built in `lib.rs`;
//! handlers reach it through axum's `State`.

use std::sync::Arc;

use axum::extract::FromRef;
use kit::auth::TokenVerifier;

use crate::app::Carts;

/// The state of every carts handler.
#[derive(Clone)]
pub struct AppState {
    pub carts: Carts,
    pub verifier: Arc<TokenVerifier>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
