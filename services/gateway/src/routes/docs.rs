//! The shop's API docs: `/openapi.json` merged from every upstream, `/docs` rendered by Swagger
//! UI from assets built into the gateway (`assets/docs/`), so the page needs no other origin.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use futures_util::future::join_all;
use http::{HeaderValue, header};
use kit::ApiError;
use kit::http::BearerAuth;
use serde_json::{Map, Value};
use utoipa::OpenApi;

use crate::routing::{RouteTable, Upstream};
use crate::state::AppState;

/// The gateway's own part of the document.
#[derive(OpenApi)]
#[openapi(
    info(title = "mercato", description = "The mercato e-commerce API, as served by the gateway."),
    paths(super::status::status),
    components(schemas(kit::error::ProblemBody)),
    modifiers(&BearerAuth),
    tags((name = "gateway", description = "Served by the gateway itself"))
)]
struct GatewayApi;

/// The page and its assets may load only from the shop's own origin: scripts and styles from
/// `/docs/…`, the document from `/openapi.json`. `data:` images are the stylesheet's inline
/// icons; nothing may frame the page, and no form or `<base>` may point elsewhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>mercato API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/docs.js"></script>
  </body>
</html>
"#;

/// The files under `/docs/`: name, media type, bytes.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/docs/swagger-ui-bundle.js"),
    ),
    ("swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../../assets/docs/swagger-ui.css")),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/docs/docs.js")),
];

/// `GET /docs`: the API reference page.
pub(crate) async fn page() -> Response {
    with_policy(Html(DOCS_PAGE).into_response())
}

/// `GET /docs/{asset}`: the viewer's script and stylesheet, and the script that starts it.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, media_type, bytes)) = ASSETS.iter().find(|(known, _, _)| *known == name) else {
        return ApiError::not_found(format!("no docs asset {name}")).into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    // The names carry no version: a browser checks back within minutes after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    with_policy(response)
}

fn with_policy(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// `GET /asyncapi.json`: the AsyncAPI 3.0 document of the events the services publish (the
/// contract a consumer in any language needs; docs/asyncapi.json is the same document).
pub(crate) async fn asyncapi() -> Json<Value> {
    static DOCUMENT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(contracts::asyncapi::document);
    Json(DOCUMENT.clone())
}

/// `GET /openapi.json`: the gateway's document plus every reachable upstream's paths and
/// components, limited to the paths the gateway routes to that upstream.
pub(crate) async fn openapi(State(state): State<Arc<AppState>>) -> Json<Value> {
    let fetches = state.upstreams.values().map(|upstream| fetch_document(upstream));
    let mut merged =
        serde_json::to_value(GatewayApi::openapi()).unwrap_or_else(|_| Value::Object(Map::new()));
    let mut missing = Vec::new();
    for (upstream, document) in join_all(fetches).await {
        match document {
            Some(document) => {
                merge_document(&mut merged, &document, |path| routes_to(&state.routes, path, upstream))
            }
            None => missing.push(upstream.name.as_str()),
        }
    }
    if !missing.is_empty() {
        note_missing(&mut merged, &missing);
    }
    Json(merged)
}

async fn fetch_document(upstream: &Upstream) -> (&Upstream, Option<Value>) {
    match upstream.any_probe().get_json::<Value>("/openapi.json", None).await {
        Ok(document) => (upstream, Some(document)),
        Err(failure) => {
            tracing::warn!(upstream = %upstream.name, error = %failure, "OpenAPI document unavailable; left out");
            (upstream, None)
        }
    }
}

fn routes_to(routes: &RouteTable, path: &str, upstream: &Upstream) -> bool {
    routes.resolve(path).is_some_and(|route| route.upstream.name == upstream.name)
}

/// Adds `document`'s paths that `routed` accepts, its components and its tags to `merged`;
/// on a name both have, the entry already in `merged` stays.
fn merge_document(merged: &mut Value, document: &Value, routed: impl Fn(&str) -> bool) {
    if let Some(paths) = document.get("paths").and_then(Value::as_object)
        && let Some(into) = object_at(merged, "paths")
    {
        for (path, item) in paths.iter().filter(|(path, _)| routed(path)) {
            into.entry(path.clone()).or_insert_with(|| item.clone());
        }
    }
    if let Some(components) = document.get("components").and_then(Value::as_object)
        && let Some(into) = object_at(merged, "components")
    {
        for (section, entries) in components {
            let Some(entries) = entries.as_object() else { continue };
            let section = into.entry(section.clone()).or_insert_with(|| Value::Object(Map::new()));
            if let Some(section) = section.as_object_mut() {
                for (name, entry) in entries {
                    section.entry(name.clone()).or_insert_with(|| entry.clone());
                }
            }
        }
    }
    if let Some(tags) = document.get("tags").and_then(Value::as_array) {
        merge_tags(merged, tags);
    }
}

fn merge_tags(merged: &mut Value, tags: &[Value]) {
    let Some(root) = merged.as_object_mut() else { return };
    let into = root.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
    let Some(into) = into.as_array_mut() else { return };
    for tag in tags {
        if !into.iter().any(|known| known.get("name") == tag.get("name")) {
            into.push(tag.clone());
        }
    }
}

/// The object member `key` of the document root, created when absent; `None` when the root or
/// the member is not an object (nothing to merge into).
fn object_at<'a>(document: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    document
        .as_object_mut()?
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// Says in `info.description` which services are left out, so a reader knows the page is partial.
fn note_missing(merged: &mut Value, missing: &[&str]) {
    let note = format!("Not shown (unreachable just now): {}.", missing.join(", "));
    if let Some(info) = merged.get_mut("info").and_then(Value::as_object_mut) {
        let description = match info.get("description").and_then(Value::as_str) {
            Some(text) => format!("{text}\n\n{note}"),
            None => note,
        };
        info.insert("description".to_owned(), Value::String(description));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_components_are_merged_and_unrouted_paths_left_out() {
        let mut merged = json!({"openapi": "3.1.0", "paths": {"/api/v1/status": {}}});
        let users = json!({
            "paths": {"/api/v1/users/me": {"get": {}}, "/internal/users/{id}": {"get": {}}},
            "components": {"schemas": {"User": {"type": "object"}}, "securitySchemes": {"bearer": {}}},
            "tags": [{"name": "users"}]
        });
        let products = json!({
            "paths": {"/api/v1/products": {"get": {}}},
            "components": {"schemas": {"Product": {"type": "object"}, "User": {"type": "string"}}},
            "tags": [{"name": "products"}, {"name": "users"}]
        });
        merge_document(&mut merged, &users, |p| p.starts_with("/api/"));
        merge_document(&mut merged, &products, |p| p.starts_with("/api/"));
        let paths: Vec<&String> = merged["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(merged["paths"].get("/internal/users/{id}").is_none());
        assert_eq!(merged["components"]["schemas"]["User"]["type"], "object");
        assert_eq!(merged["components"]["schemas"]["Product"]["type"], "object");
        assert!(merged["components"]["securitySchemes"].get("bearer").is_some());
        assert_eq!(merged["tags"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_gateway_document_describes_the_status_endpoint() {
        let document = serde_json::to_value(GatewayApi::openapi()).unwrap();
        assert!(document["paths"].get("/api/v1/status").is_some());
        assert!(document["components"]["schemas"].get("StatusReport").is_some());
    }

    /// Every `src`/`href` of the page and every URL in the starter script is a path on the
    /// shop's own origin: no scheme, no `//host`.
    #[test]
    fn the_docs_page_references_no_external_url() {
        let starter = std::str::from_utf8(ASSETS[2].2).unwrap();
        let mut references = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in DOCS_PAGE.match_indices(attribute) {
                let rest = &DOCS_PAGE[at + attribute.len()..];
                references.push(&rest[..rest.find('"').unwrap()]);
            }
        }
        assert_eq!(references.len(), 3, "{references:?}");
        for reference in &references {
            assert!(reference.starts_with('/') && !reference.starts_with("//"), "{reference}");
            let asset = reference.strip_prefix("/docs/").unwrap();
            assert!(ASSETS.iter().any(|(name, _, _)| *name == asset), "{reference} is not served");
        }
        for text in [DOCS_PAGE, starter] {
            assert!(!text.contains("://") && !text.contains("\"//"), "{text}");
        }
        assert!(starter.contains(r#"url: "/openapi.json""#));
    }

    #[test]
    fn the_content_security_policy_allows_only_the_shops_origin() {
        let sources: Vec<&str> = CONTENT_SECURITY_POLICY
            .split(';')
            .flat_map(|directive| directive.split_whitespace().skip(1))
            .collect();
        for source in sources {
            assert!(["'self'", "'none'", "data:"].contains(&source), "{source} in {CONTENT_SECURITY_POLICY}");
        }
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
    }

    #[tokio::test]
    async fn assets_are_served_with_their_media_type_and_unknown_ones_are_404() {
        let response = asset(Path("swagger-ui-bundle.js".to_owned())).await;
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        let response = asset(Path("../Cargo.toml".to_owned())).await;
        assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
    }

    /// assets/docs/README.md names the version that is really embedded.
    #[test]
    fn the_vendored_viewer_is_the_version_its_readme_names() {
        let readme = include_str!("../../assets/docs/README.md");
        let named = readme.split("swagger-ui-dist@").nth(1).unwrap().split('`').next().unwrap();
        let bundle = String::from_utf8_lossy(ASSETS[0].2);
        assert!(bundle.contains(&format!(r#"PACKAGE_VERSION:"{named}""#)), "README names {named}");
    }

    #[test]
    fn missing_services_are_named_in_the_description() {
        let mut merged = json!({"info": {"title": "mercato"}});
        note_missing(&mut merged, &["orders", "products"]);
        assert!(merged["info"]["description"].as_str().unwrap().contains("orders, products"));
    }
}
