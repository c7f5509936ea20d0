//! The shop's API docs: `/openapi.json` merged from every upstream, `/docs` rendered by Scalar.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Html;
use futures_util::future::join_all;
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

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>mercato API</title>
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
  </body>
</html>
"#;

/// `GET /docs`: the API reference page.
pub(crate) async fn page() -> Html<&'static str> {
    Html(DOCS_PAGE)
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

    #[test]
    fn missing_services_are_named_in_the_description() {
        let mut merged = json!({"info": {"title": "mercato"}});
        note_missing(&mut merged, &["orders", "products"]);
        assert!(merged["info"]["description"].as_str().unwrap().contains("orders, products"));
    }
}
