//! What every page goes through: the session cookie (opened, re-sealed when changed), the CSRF
//! check on every POST, the security headers, and errors turned into pages. Handlers reach the
//! session through [`Visit`] and sign-in-only API calls through [`App::authed`].

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::api::{ApiFailure, Gateway, Issued};
use crate::session::{self, Session, SessionKeys, Tokens};
use crate::views::{self, Chrome};

/// The policy of every page: only the shop's own scripts, styles, images and forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; \
     style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form body read for the CSRF check (forms here are a few fields).
const FORM_LIMIT: usize = 64 * 1024;

/// What handlers share.
pub struct App {
    pub gateway: Gateway,
    pub keys: SessionKeys,
    pub always_secure: bool,
    pub trust_forwarded_proto: bool,
    pub featured_products: u32,
    pub page_size: u32,
}

pub type AppState = Arc<App>;

/// This request's session, shared between the middleware and the handler.
#[derive(Clone)]
pub struct Visit(Arc<Mutex<VisitState>>);

struct VisitState {
    session: Session,
    changed: bool,
}

impl Visit {
    fn with<R>(&self, f: impl FnOnce(&mut VisitState) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The signed-in shopper's tokens.
    pub fn tokens(&self) -> Option<Tokens> {
        self.with(|v| v.session.tokens.clone())
    }

    pub fn signed_in(&self) -> bool {
        self.with(|v| v.session.tokens.is_some())
    }

    /// Signs in (with fresh tokens) or out (`None`); a new CSRF secret either way.
    pub fn sign(&self, tokens: Option<Tokens>) {
        self.with(|v| {
            v.session.rotate(tokens);
            v.changed = true;
        });
    }

    fn replace_tokens(&self, tokens: Tokens) {
        self.with(|v| {
            v.session.tokens = Some(tokens);
            v.changed = true;
        });
    }

    /// What the layout needs: who is signed in, and the CSRF token for its forms.
    pub fn chrome(&self, app: &App) -> Chrome {
        self.with(|v| Chrome {
            shopper: v.session.tokens.as_ref().map(|t| t.name.clone()),
            csrf: app.keys.csrf_token(&v.session),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Visit>().cloned().ok_or(PageError::Internal)
    }
}

/// A page that could not be shown as asked.
#[derive(Debug, Clone)]
pub enum PageError {
    /// The page is for signed-in shoppers: to the sign-in page, then back to `next`.
    SignIn {
        next: String,
    },
    NotFound,
    /// The API refused or failed; its message is shown.
    Api(ApiFailure),
    Internal,
}

impl From<ApiFailure> for PageError {
    fn from(failure: ApiFailure) -> Self {
        match failure.status() {
            StatusCode::NOT_FOUND => PageError::NotFound,
            _ => PageError::Api(failure),
        }
    }
}

impl IntoResponse for PageError {
    /// Rendered by [`sessions`], which knows the session the layout needs.
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub type PageResult = Result<Response, PageError>;

/// Calls the API as the signed-in shopper: `authed!(app, visit, next, |token| call.await)`
/// refreshes a stale access token first, and once more if the API answers 401 anyway; a
/// refresh refused signs the shopper out and sends them to sign in, then back to `next`.
/// A macro, not a function taking an async closure, so handlers' futures stay `Send`.
macro_rules! authed {
    ($app:expr, $visit:expr, $next:expr, |$token:ident| $call:expr) => {{
        let (app, visit, next): (&$crate::web::App, &$crate::web::Visit, &str) = (&$app, &$visit, &$next);
        async {
            let (tokens, refreshed) = app.fresh_tokens(visit, next).await?;
            let first = {
                let $token: &str = &tokens.access;
                $call
            };
            match first {
                Err(failure) if failure.status() == http::StatusCode::UNAUTHORIZED && !refreshed => {
                    let tokens = app.refreshed(visit, &tokens, next).await?;
                    let $token: &str = &tokens.access;
                    match $call {
                        Err(failure) if failure.status() == http::StatusCode::UNAUTHORIZED => {
                            visit.sign(None);
                            Err($crate::web::PageError::SignIn { next: next.to_owned() })
                        }
                        other => other.map_err($crate::web::PageError::from),
                    }
                }
                other => other.map_err($crate::web::PageError::from),
            }
        }
        .await
    }};
}
pub(crate) use authed;

impl App {
    /// The shopper's tokens, refreshed first when the access token is stale (and whether they
    /// were); not signed in: to the sign-in page.
    pub async fn fresh_tokens(&self, visit: &Visit, next: &str) -> Result<(Tokens, bool), PageError> {
        let tokens = visit.tokens().ok_or_else(|| PageError::SignIn { next: next.to_owned() })?;
        if tokens.access_is_stale() {
            return Ok((self.refreshed(visit, &tokens, next).await?, true));
        }
        Ok((tokens, false))
    }

    /// New tokens for `tokens`' refresh token, sealed into the session; refused: signed out.
    pub async fn refreshed(&self, visit: &Visit, tokens: &Tokens, next: &str) -> Result<Tokens, PageError> {
        match self.gateway.refresh(&tokens.refresh).await {
            Ok(issued) => {
                let fresh = tokens_from(issued, tokens.name.clone());
                visit.replace_tokens(fresh.clone());
                Ok(fresh)
            }
            Err(failure) => {
                tracing::debug!(status = %failure.status(), "refresh refused; signing out");
                visit.sign(None);
                Err(PageError::SignIn { next: next.to_owned() })
            }
        }
    }
}

/// The session's tokens from an issued pair.
pub fn tokens_from(issued: Issued, fallback_name: String) -> Tokens {
    let name = issued.user.map(|u| u.name).filter(|n| !n.is_empty()).unwrap_or(fallback_name);
    Tokens {
        access: issued.access_token,
        refresh: issued.refresh_token,
        expires_at: session::now() + issued.expires_in,
        name,
    }
}

/// Middleware around every page: opens the session (a new one when absent or unreadable),
/// refuses a POST without this session's CSRF token (403), renders [`PageError`]s, re-seals
/// the cookie when the session changed, and sets the security headers.
pub async fn sessions(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let secure = app.always_secure
        || (app.trust_forwarded_proto
            && request
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https")));
    let opened = cookie(request.headers(), session::COOKIE).and_then(|value| app.keys.open(value));
    let changed = opened.is_none();
    let visit = Visit(Arc::new(Mutex::new(VisitState { session: opened.unwrap_or_default(), changed })));

    let (mut parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return finish(
                &app,
                &visit,
                secure,
                views::problem_page(
                    &visit.chrome(&app),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "That form was too large to send.",
                ),
            );
        };
        let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == "csrf").map(|(_, value)| value));
        let valid = token.is_some_and(|token| visit.with(|v| app.keys.csrf_matches(&v.session, &token)));
        if !valid {
            let page = views::problem_page(
                &visit.chrome(&app),
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this shop. Please go back, reload the page and try again.",
            );
            return finish(&app, &visit, secure, page);
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(visit.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    let response = match response.extensions().get::<PageError>().cloned() {
        Some(error) => render_error(&app, &visit, &error),
        None => response,
    };
    finish(&app, &visit, secure, response)
}

fn render_error(app: &App, visit: &Visit, error: &PageError) -> Response {
    let chrome = visit.chrome(app);
    match error {
        PageError::SignIn { next } => {
            Redirect::to(&format!("/signin?next={}", views::url_encode(next))).into_response()
        }
        PageError::NotFound => {
            views::problem_page(&chrome, StatusCode::NOT_FOUND, "We could not find that page.")
        }
        PageError::Api(failure) => {
            let status = match failure.status() {
                s if s.is_server_error() => StatusCode::SERVICE_UNAVAILABLE,
                s => s,
            };
            views::problem_page(&chrome, status, &failure.message())
        }
        PageError::Internal => views::problem_page(
            &chrome,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        ),
    }
}

/// Re-seals a changed session into the cookie and adds the headers every page carries.
fn finish(app: &App, visit: &Visit, secure: bool, mut response: Response) -> Response {
    let sealed = visit.with(|v| v.changed.then(|| app.keys.seal(&v.session)));
    let headers = response.headers_mut();
    match sealed {
        Some(Ok(value)) => {
            let secure = if secure { "; Secure" } else { "" };
            let cookie = format!(
                "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}",
                session::COOKIE
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        Some(Err(e)) => tracing::error!(error = %e, "could not seal the session"),
        None => {}
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show a shopper's own cart, orders and form tokens: never cached by anyone.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Where to go after signing in: a path on this site only (never `//host` or a URL).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/checkout")), "/checkout");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; mercato_session=xyz; b=2"));
        assert_eq!(cookie(&headers, "mercato_session"), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
