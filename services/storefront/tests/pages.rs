//! The storefront alone on port 0, its gateway away: what it answers without the API (the
//! sign-in page, the session cookie's attributes, CSRF refusals, the error page when the API
//! cannot be reached). The journeys through a real shop are in crates/mercato/tests/storefront.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use reqwest::{StatusCode, header};
use storefront::config::SessionConfig;
use storefront::{Application, StorefrontConfig};
use tokio_util::sync::CancellationToken;

struct Running {
    base: String,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(always_secure: bool) -> Running {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = StorefrontConfig {
        gateway_url: format!("http://{dead}"),
        session: SessionConfig {
            key: Some("ab".repeat(32)),
            always_secure,
            trust_forwarded_proto: true,
            ..SessionConfig::default()
        },
        ..StorefrontConfig::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.client.retries = 0;
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let stop = CancellationToken::new();
    tokio::spawn(app.run(stop.clone()));
    Running { base, stop }
}

fn session_cookie(response: &reqwest::Response) -> String {
    response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_request_came_over_tls_and_only_then() {
    let shop = start(false).await;
    let http = reqwest::Client::new();
    let plain = http.get(format!("{}/signin", shop.base)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    let cookie = session_cookie(&plain);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let tls =
        http.get(format!("{}/signin", shop.base)).header("x-forwarded-proto", "https").send().await.unwrap();
    assert!(session_cookie(&tls).contains("; Secure"), "over TLS");
    let always = start(true).await;
    let configured = http.get(format!("{}/signin", always.base)).send().await.unwrap();
    assert!(session_cookie(&configured).contains("; Secure"), "always_secure");
}

#[tokio::test]
async fn a_post_without_a_session_or_token_is_refused_before_the_api_is_called() {
    let shop = start(false).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/cart/items", shop.base))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("product_id=x&quantity=1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(
        answer.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'")
    );
    assert!(answer.text().await.unwrap().contains("This form has expired"));
}

#[tokio::test]
async fn the_api_away_is_a_readable_503_page_not_a_stack_trace() {
    let shop = start(false).await;
    let answer = reqwest::get(format!("{}/", shop.base)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let page = answer.text().await.unwrap();
    assert!(page.contains("The shop cannot answer right now"), "{page}");
    assert!(!page.contains("unreachable"), "no internal detail: {page}");
    let ready = reqwest::get(format!("{}/readyz", shop.base)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "degraded, not unready, without the gateway");
}
