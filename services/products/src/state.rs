//! What every handler of the products service shares: the use cases of the application layer,
//! the verifier of access tokens, and the two settings the HTTP edge reads (the currency input
//! is parsed in, the path images are served under). Built once in `Application::build`.

use std::sync::Arc;

use axum::extract::FromRef;
use kit::auth::TokenVerifier;

use crate::app::catalog::Catalog;
use crate::app::images::Images;
use crate::app::reservations::Reservations;

/// The products service's shared state: one struct per group of use cases.
#[derive(Clone)]
pub(crate) struct AppState {
    pub catalog: Catalog,
    pub images: Images,
    pub reservations: Reservations,
    pub verifier: Arc<TokenVerifier>,
    /// The one currency prices are in (input in another is refused).
    pub currency: Arc<str>,
    /// URL path images are served under.
    pub image_path: Arc<str>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}
