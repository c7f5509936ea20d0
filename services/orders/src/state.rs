//! What the handlers share: the application layer's use cases and the token verifier. Built in
//! `lib.rs`; handlers reach it through axum's `State`.

use std::sync::Arc;

use axum::extract::FromRef;
use kit::auth::TokenVerifier;

use crate::app::checkout::Checkout;
use crate::app::orders::Orders;
use crate::app::stats::SalesStats;

/// The state of every orders handler.
#[derive(Clone)]
pub struct AppState {
    pub checkout: Checkout,
    pub orders: Orders,
    pub stats: SalesStats,
    pub verifier: Arc<TokenVerifier>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
