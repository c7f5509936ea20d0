//! The users service through its real router on 127.0.0.1:0 (SQLite unless named otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::{SERVICE_SECRET, TestApp, problem, spawn_app, spawn_app_with};
use kit::testing::{Backend, TestRedis};
use serde_json::{Value, json};
use users::UsersConfig;

#[tokio::test]
async fn register_answers_201_with_user_and_token_pair() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = app.register("ada@example.com").await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "customer");
    assert!(body["user"].get("password_hash").is_none());
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
}

#[tokio::test]
async fn email_taken_in_any_case_is_409() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("ada@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/register",
            json!({"name": "A", "email": "ADA@Example.com", "password": "12345678"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["type"], "urn:mercato:problem:conflict");
}

#[tokio::test]
async fn bad_registration_lists_every_bad_field() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .post("/api/v1/auth/register", json!({"name": "", "email": "nope", "password": "short"}), None)
        .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "email", "password"]);
}

#[tokio::test]
async fn unknown_field_malformed_json_and_wrong_content_type_are_4xx_problems() {
    let app = spawn_app(Backend::Sqlite).await;
    let unknown = app
        .post(
            "/api/v1/auth/register",
            json!({"name": "A", "email": "a@b.co", "password": "12345678", "role": "admin"}),
            None,
        )
        .await;
    assert_eq!(unknown.status(), 400);
    assert!(problem(unknown).await["detail"].as_str().unwrap().contains("unknown field `role`"));

    let malformed = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    problem(malformed).await;

    let text = app.http.post(app.url("/api/v1/auth/login")).body("email=a").send().await.unwrap();
    assert_eq!(text.status(), 415);
    problem(text).await;
}

#[tokio::test]
async fn a_json_array_is_no_object_body_even_with_the_right_number_of_fields() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token("root@shop.test").await;
    let ada = app.register("ada@example.com").await;
    let as_array =
        app.post("/api/v1/auth/register", json!(["A", "b@example.com", "12345678", null]), None).await;
    assert_eq!(as_array.status(), 400);
    problem(as_array).await;
    let path = format!("/api/v1/users/{}", ada["user"]["id"].as_str().unwrap());
    let as_array = app.patch(&path, json!([null, null]), &admin).await;
    assert_eq!(as_array.status(), 400);
    problem(as_array).await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = json!({"name": "x".repeat(2 * 1024 * 1024), "email": "a@b.co", "password": "12345678"});
    let response = app.post("/api/v1/auth/register", big, None).await;
    assert_eq!(response.status(), 413);
    problem(response).await;
}

#[tokio::test]
async fn login_refuses_wrong_password_and_unknown_email_alike() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("ada@example.com").await;
    let wrong = app
        .post("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "wrong pass"}), None)
        .await;
    let unknown = app
        .post("/api/v1/auth/login", json!({"email": "bob@example.com", "password": "wrong pass"}), None)
        .await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(problem(wrong).await["detail"], problem(unknown).await["detail"]);
    let ok = app
        .post("/api/v1/auth/login", json!({"email": "ADA@example.com", "password": "correct horse"}), None)
        .await;
    assert_eq!(ok.status(), 200, "email is case-insensitive at login");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let old = session["refresh_token"].as_str().unwrap();
    let renewed = app.post("/api/v1/auth/refresh", json!({"refresh_token": old}), None).await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    assert_ne!(renewed["refresh_token"], session["refresh_token"]);

    let replay = app.post("/api/v1/auth/refresh", json!({"refresh_token": old}), None).await;
    assert_eq!(replay.status(), 401);
    // Reuse revoked the whole sign-in, including the token handed out by the rotation.
    let successor =
        app.post("/api/v1/auth/refresh", json!({"refresh_token": renewed["refresh_token"]}), None).await;
    assert_eq!(successor.status(), 401);
}

#[tokio::test]
async fn logout_ends_the_refresh_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let token = &session["refresh_token"];
    assert_eq!(app.post("/api/v1/auth/logout", json!({"refresh_token": token}), None).await.status(), 204);
    assert_eq!(app.post("/api/v1/auth/refresh", json!({"refresh_token": token}), None).await.status(), 401);
}

#[tokio::test]
async fn me_needs_a_token_and_shows_the_account_with_addresses() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("/api/v1/users/me", None).await.status(), 401);
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let me: Value = app.get("/api/v1/users/me", Some(token)).await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["addresses"], json!([]));
    assert!(
        me["created_at"].as_str().unwrap().ends_with('Z')
            || me["created_at"].as_str().unwrap().contains("+00:00")
    );
}

#[tokio::test]
async fn patch_me_changes_fields_and_refuses_a_taken_email() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("bob@example.com").await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let updated =
        app.patch("/api/v1/users/me", json!({"name": "Ada L.", "phone": "+44 20 7946 0958"}), token).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["phone"].as_str()),
        (Some("Ada L."), Some("+44 20 7946 0958"))
    );
    let cleared: Value =
        app.patch("/api/v1/users/me", json!({"phone": null}), token).await.json().await.unwrap();
    assert_eq!(cleared["phone"], Value::Null);
    assert_eq!(app.patch("/api/v1/users/me", json!({"email": "BOB@example.com"}), token).await.status(), 409);
}

#[tokio::test]
async fn deleted_user_loses_tokens_and_cannot_log_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(app.delete("/api/v1/users/me", token).await.status(), 204);
    assert_eq!(app.get("/api/v1/users/me", Some(token)).await.status(), 401);
    let refresh =
        app.post("/api/v1/auth/refresh", json!({"refresh_token": session["refresh_token"]}), None).await;
    assert_eq!(refresh.status(), 401);
    let login = app
        .post("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "correct horse"}), None)
        .await;
    assert_eq!(login.status(), 401);
    // The email is free again.
    app.register("ada@example.com").await;
}

#[tokio::test]
async fn addresses_belong_to_their_user() {
    let app = spawn_app(Backend::Sqlite).await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (ada, bob) = (ada["access_token"].as_str().unwrap(), bob["access_token"].as_str().unwrap());
    let address =
        json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us"});
    let created = app.post("/api/v1/users/me/addresses", address, Some(ada)).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!((created["country"].as_str(), created["is_default"].as_bool()), (Some("US"), Some(true)));
    let path = format!("/api/v1/users/me/addresses/{}", created["id"].as_str().unwrap());

    assert_eq!(app.get(&path, Some(bob)).await.status(), 404);
    assert_eq!(app.patch(&path, json!({"city": "Elsewhere"}), bob).await.status(), 404);
    assert_eq!(app.delete(&path, bob).await.status(), 404);
    let bobs: Value = app.get("/api/v1/users/me/addresses", Some(bob)).await.json().await.unwrap();
    assert_eq!(bobs, json!([]));

    let patched: Value =
        app.patch(&path, json!({"city": "Shelbyville", "line2": "Apt 2"}), ada).await.json().await.unwrap();
    assert_eq!((patched["city"].as_str(), patched["line2"].as_str()), (Some("Shelbyville"), Some("Apt 2")));
    assert_eq!(app.delete(&path, ada).await.status(), 204);
    assert_eq!(app.get(&path, Some(ada)).await.status(), 404);
}

#[tokio::test]
async fn address_validation_names_fields_and_bad_ids_are_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let response = app
        .post(
            "/api/v1/users/me/addresses",
            json!({"line1": "", "city": "X", "postal_code": "1", "country": "XX"}),
            Some(token),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["line1", "country"]);
    let bad_id = app.get("/api/v1/users/me/addresses/not-a-uuid", Some(token)).await;
    assert_eq!(bad_id.status(), 400);
    problem(bad_id).await;
}

#[tokio::test]
async fn admin_routes_answer_403_to_customers_and_401_to_strangers() {
    let app = spawn_app(Backend::Sqlite).await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/users", None).await.status(), 401);
    let forbidden = app.get("/api/v1/users", Some(token)).await;
    assert_eq!(forbidden.status(), 403);
    problem(forbidden).await;
}

#[tokio::test]
async fn admin_lists_searches_promotes_and_deletes_users() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token("root@shop.test").await;
    let ada = app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    let ada_id = ada["user"]["id"].as_str().unwrap();

    let page: Value = app.get("/api/v1/users?limit=2", Some(&admin)).await.json().await.unwrap();
    assert_eq!(
        (page["total"].as_u64(), page["total_pages"].as_u64(), page["limit"].as_u64()),
        (Some(3), Some(2), Some(2))
    );
    let found: Value = app.get("/api/v1/users?q=ADA", Some(&admin)).await.json().await.unwrap();
    assert_eq!(found["items"][0]["id"], ada_id);
    assert_eq!(app.get("/api/v1/users?limit=101", Some(&admin)).await.status(), 400);
    assert_eq!(app.get("/api/v1/users?page=0", Some(&admin)).await.status(), 400);

    let promoted = app.patch(&format!("/api/v1/users/{ada_id}"), json!({"role": "admin"}), &admin).await;
    assert_eq!(promoted.status(), 200);
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "admin");
    assert_eq!(
        app.patch(&format!("/api/v1/users/{ada_id}"), json!({"role": "service"}), &admin).await.status(),
        400
    );

    assert_eq!(app.delete(&format!("/api/v1/users/{ada_id}"), &admin).await.status(), 204);
    assert_eq!(app.get(&format!("/api/v1/users/{ada_id}"), Some(&admin)).await.status(), 404);
    assert_eq!(app.delete(&format!("/api/v1/users/{ada_id}"), &admin).await.status(), 404);
}

#[tokio::test]
async fn demoted_admin_loses_admin_routes_at_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = app.admin_token("root@shop.test").await;
    let other = app.admin_token("other@shop.test").await;
    let me: Value = app.get("/api/v1/users/me", Some(&other)).await.json().await.unwrap();
    app.patch(&format!("/api/v1/users/{}", me["id"].as_str().unwrap()), json!({"role": "customer"}), &root)
        .await;
    assert_eq!(app.get("/api/v1/users", Some(&other)).await.status(), 403);
}

#[tokio::test]
async fn service_token_needs_the_right_secret_and_only_opens_service_routes() {
    let app = spawn_app(Backend::Sqlite).await;
    let wrong = app
        .post("/internal/v1/auth/token", json!({"client_id": "orders", "client_secret": "nope"}), None)
        .await;
    assert_eq!(wrong.status(), 401);
    let unknown = app
        .post("/internal/v1/auth/token", json!({"client_id": "ghost", "client_secret": SERVICE_SECRET}), None)
        .await;
    assert_eq!(unknown.status(), 401);
    let ok = app
        .post(
            "/internal/v1/auth/token",
            json!({"client_id": "orders", "client_secret": SERVICE_SECRET}),
            None,
        )
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let claims = kit::auth::TokenVerifier::with_keys(
        &app.get("/api/v1/auth/jwks.json", None).await.json().await.unwrap(),
    )
    .verify(token)
    .await
    .unwrap();
    assert_eq!((claims.role, claims.sub.as_str()), (kit::auth::Role::Service, "orders"));
    assert_eq!(app.get("/api/v1/users/me", Some(token)).await.status(), 403, "a service token is not a user");
}

#[tokio::test]
async fn jwks_publishes_one_ed25519_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let jwks: Value = app.get("/api/v1/auth/jwks.json", None).await.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key["kid"].is_string());
}

/// The procedure of README's "Rotating the signing key", at its middle step: one replica still
/// signs with the old key and publishes the new one, the other signs with the new key and
/// publishes the old one. Every token works on both, and both publish both keys.
#[tokio::test]
async fn a_signing_key_rotation_across_two_replicas_never_answers_401() {
    let keys = tempfile::tempdir().unwrap();
    let (old, new) = (keys.path().join("old.pem"), keys.path().join("new.pem"));
    for path in [&old, &new] {
        std::fs::write(path, kit::signing::SigningKey::generate().unwrap().1).unwrap();
    }
    let behind = spawn_app_with(Backend::Sqlite, |config| {
        config.auth.signing_key_file = Some(old.clone());
        config.auth.generate_signing_key = false;
        config.auth.published_keys_file = Some(new.clone());
    })
    .await;
    let mut config = behind.config.clone();
    config.auth.signing_key_file = Some(new.clone());
    config.auth.published_keys_file = Some(old.clone());
    let ahead = users::Application::build(config).await.unwrap();
    let ahead_base = format!("http://{}", ahead.local_addr());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(ahead.run(stop.clone()));
    let _stop = stop.drop_guard();

    let http = reqwest::Client::new();
    let registered = behind.register("rotating@example.com").await;
    let login = json!({"email": "rotating@example.com", "password": "correct horse"});
    let answer = http.post(format!("{ahead_base}/api/v1/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let from_ahead: Value = answer.json().await.unwrap();
    let tokens = [registered["access_token"].as_str().unwrap(), from_ahead["access_token"].as_str().unwrap()];
    for base in [behind.base.as_str(), ahead_base.as_str()] {
        let jwks: Value =
            http.get(format!("{base}/api/v1/auth/jwks.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{base} publishes both keys");
        for token in tokens {
            let me = http.get(format!("{base}/api/v1/users/me")).bearer_auth(token).send().await.unwrap();
            assert_eq!(me.status(), 200, "{base}");
        }
    }
}

#[tokio::test]
async fn a_published_keys_file_that_is_not_a_key_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("published.pem");
    std::fs::write(&path, "not a key").unwrap();
    let db = kit::testing::TestDatabase::new(Backend::Sqlite, "users_keys").await;
    let mut config = common::test_config(&db);
    config.auth.published_keys_file = Some(path.clone());
    let err = users::Application::build(config).await.err().expect("refused").to_string();
    assert!(err.contains("published keys file") && err.contains(&path.display().to_string()), "{err}");
}

/// A replica that starts before its migration Job has run stays out of service, naming what is
/// missing, and turns ready once the schema is there (deploy/README.md, "Rolling update").
#[tokio::test]
async fn readiness_waits_for_the_schema_this_binary_expects() {
    let app = spawn_app_with(Backend::Postgres, |config| config.database.migrate_on_start = false).await;
    let unready = app.get("/readyz", None).await;
    assert_eq!(unready.status(), 503);
    let detail = problem(unready).await["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("not applied") && detail.contains("mercato migrate users"), "{detail}");
    users::migrate(&app.config.database).await.unwrap();
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    app.get("/api/v1/auth/jwks.json", None).await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains(r#"route="/api/v1/auth/jwks.json""#), "{metrics}");
    let openapi: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(openapi["paths"]["/api/v1/auth/register"]["post"].is_object());
    assert!(openapi["paths"]["/api/v1/users/me/addresses/{id}"]["patch"].is_object());
    let missing = app.get("/nope", None).await;
    assert_eq!(missing.status(), 404);
    problem(missing).await;
}

#[tokio::test]
async fn the_document_names_the_rules_the_server_enforces() {
    let app = spawn_app(Backend::Sqlite).await;
    let openapi: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let schemas = &openapi["components"]["schemas"];
    let address = &schemas["CreateAddressRequest"]["properties"];
    assert_eq!(
        (address["line1"]["minLength"].as_u64(), address["line1"]["maxLength"].as_u64()),
        (Some(1), Some(200))
    );
    assert!(address["country"]["enum"].as_array().unwrap().contains(&json!("DE")));
    let register = &schemas["RegisterRequest"]["properties"];
    assert_eq!(register["password"]["minLength"], 8);
    assert_eq!(register["email"]["format"], "email");
    // page and limit are bounded whole numbers, as kit reads them (an empty value is a 400).
    let list = openapi["paths"]["/api/v1/users"]["get"]["parameters"].as_array().unwrap();
    let limit = list.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((&limit["schema"]["type"], &limit["schema"]["maximum"]), (&json!("integer"), &json!(100)));
    let page = list.iter().find(|p| p["name"] == "page").unwrap();
    assert_eq!(page["schema"]["maximum"], 10001);
    let login = &openapi["paths"]["/api/v1/auth/login"]["post"]["responses"];
    assert_eq!(
        login["429"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/ProblemBody"
    );
}

#[tokio::test]
async fn request_id_is_echoed_or_created() {
    let app = spawn_app(Backend::Sqlite).await;
    let given = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    let made = app.get("/healthz", None).await;
    assert_eq!(made.headers()["x-request-id"].len(), 32);
}

#[tokio::test]
async fn a_phone_longer_than_its_column_is_the_clients_400_on_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let body = json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse",
        "phone": "+4)  0.-)72.-).)-3( 3)((()(  5- -)-9- ( .. ---0.  .-4 3. 9"});
    assert_eq!(bad_field(app.post("/api/v1/auth/register", body, None).await).await, "phone");
}

#[tokio::test]
async fn whole_account_flow_works_on_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let session = app.register("ada@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let address =
        json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"});
    assert_eq!(app.post("/api/v1/users/me/addresses", address, Some(token)).await.status(), 201);
    let me: Value = app.get("/api/v1/users/me", Some(token)).await.json().await.unwrap();
    assert_eq!(me["addresses"].as_array().unwrap().len(), 1);
    let renewed =
        app.post("/api/v1/auth/refresh", json!({"refresh_token": session["refresh_token"]}), None).await;
    assert_eq!(renewed.status(), 200);
    assert_eq!(app.delete("/api/v1/users/me", token).await.status(), 204);
    assert_eq!(app.get("/api/v1/users/me", Some(token)).await.status(), 401);
}

/// The `Retry-After` of a 429 problem, in seconds.
async fn retry_after(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), 429);
    let seconds = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    problem(response).await;
    seconds
}

/// Where the login guard keeps its counts in a throttle test: this process, or the real Redis
/// under a key prefix of the test's own.
#[derive(Debug, Clone, Copy)]
enum Counts {
    InProcess,
    Redis,
}

/// The service with its login counts kept as `counts` says; the [`TestRedis`] must live as
/// long as the test.
async fn spawn_throttled(
    counts: Counts,
    configure: impl FnOnce(&mut UsersConfig),
) -> (TestApp, Option<TestRedis>) {
    let redis = matches!(counts, Counts::Redis).then(TestRedis::new);
    let shared = redis.as_ref().map(|test| test.config.clone());
    let app = spawn_app_with(Backend::Sqlite, |config| {
        if let Some(shared) = shared {
            config.redis = shared;
        }
        configure(config);
    })
    .await;
    (app, redis)
}

/// Each throttle test runs with the counts in this process and in Redis.
macro_rules! on_both_counts {
    ($($name:ident),* $(,)?) => {
        mod counts_in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Counts::InProcess).await
                }
            )*
        }
        mod counts_in_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Counts::Redis).await
                }
            )*
        }
    };
}

on_both_counts!(
    parallel_wrong_passwords_past_the_free_failures_never_reach_the_hash,
    an_attacker_on_another_address_cannot_lock_the_owner_out,
    an_account_takes_a_bounded_number_of_failures_an_hour_from_all_addresses,
    forwarded_for_is_believed_only_from_trusted_proxies_and_only_its_last_entry,
);

async fn parallel_wrong_passwords_past_the_free_failures_never_reach_the_hash(counts: Counts) {
    // A long first delay, so no wait runs out while the burst is still arriving.
    let (app, _redis) = spawn_throttled(counts, |c| c.login.first_delay_secs = 60).await;
    app.register("ada@example.com").await;
    let burst = (0..60).map(|_| app.login_from("203.0.113.7", "ada@example.com", "guess guess"));
    let answers = futures_util::future::join_all(burst).await;
    let refused = answers.iter().filter(|r| r.status() == 401).count();
    let throttled = answers.iter().filter(|r| r.status() == 429).count();
    assert_eq!((refused, throttled), (5, 55), "only the free failures are checked");
    for answer in answers.into_iter().filter(|r| r.status() == 429) {
        assert!((1..=60).contains(&retry_after(answer).await));
    }
}

async fn an_attacker_on_another_address_cannot_lock_the_owner_out(counts: Counts) {
    let (app, _redis) = spawn_throttled(counts, |c| c.login.first_delay_secs = 60).await;
    app.register("ada@example.com").await;
    for _ in 0..30 {
        let answer = app.login_from("203.0.113.7", "ada@example.com", "guess guess").await;
        assert!([401, 429].contains(&answer.status().as_u16()));
    }
    let attacker = app.login_from("203.0.113.7", "ada@example.com", "correct horse").await;
    assert!(retry_after(attacker).await <= 60, "the attacker's address waits, even with the password");
    let owner = app.login_from("198.51.100.9", "ada@example.com", "correct horse").await;
    assert_eq!(owner.status(), 200, "the owner on another address signs in");
}

async fn an_account_takes_a_bounded_number_of_failures_an_hour_from_all_addresses(counts: Counts) {
    let (app, _redis) = spawn_throttled(counts, |c| c.login.account_failures_per_hour = 8).await;
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    // The owner has signed in from home before.
    assert_eq!(app.login_from("198.51.100.9", "ada@example.com", "correct horse").await.status(), 200);
    for n in 1..=8 {
        let answer = app.login_from(format!("203.0.113.{n}"), "ada@example.com", "guess guess").await;
        assert_eq!(answer.status(), 401, "guess {n}");
    }
    // A ninth address gets nothing for about an hour, whatever the password.
    let ninth = app.login_from("203.0.113.99", "ada@example.com", "correct horse").await;
    assert!((3500..=3600).contains(&retry_after(ninth).await));
    // The owner's own address has its own budget; other accounts are untouched.
    assert_eq!(app.login_from("198.51.100.9", "ada@example.com", "correct horse").await.status(), 200);
    assert_eq!(app.login_from("203.0.113.99", "bob@example.com", "correct horse").await.status(), 200);
}

async fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_its_last_entry(counts: Counts) {
    // The gateway appends the address it saw; what the client wrote before it is not believed.
    let (app, _redis) = spawn_throttled(counts, |c| c.login.first_delay_secs = 60).await;
    app.register("ada@example.com").await;
    let statuses = futures_util::future::join_all(
        (0..10).map(|n| app.login_from(format!("10.9.8.{n}, 203.0.113.7"), "ada@example.com", "guess guess")),
    )
    .await;
    assert_eq!(statuses.iter().filter(|r| r.status() == 401).count(), 5);

    // A peer that is not a trusted proxy is the client, whatever it forwards.
    let (app, _redis) = spawn_throttled(counts, |c| {
        c.login.first_delay_secs = 60;
        c.login.trusted_proxies = Vec::new();
    })
    .await;
    app.register("ada@example.com").await;
    let statuses = futures_util::future::join_all(
        (0..10).map(|n| app.login_from(format!("203.0.113.{n}"), "ada@example.com", "guess guess")),
    )
    .await;
    assert_eq!(statuses.iter().filter(|r| r.status() == 401).count(), 5);
}

#[tokio::test]
async fn two_replicas_sharing_redis_count_failures_together() {
    let (first, _redis) = spawn_throttled(Counts::Redis, |c| c.login.first_delay_secs = 60).await;
    // A second replica: the same database, signing key and Redis, its own port and process state.
    let second = users::Application::build(first.config.clone()).await.unwrap();
    let second_url = format!("http://{}", second.local_addr());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(second.run(stop.clone()));
    let _stop = stop.drop_guard();
    first.register("ada@example.com").await;
    for n in 0..5 {
        let url = if n % 2 == 0 {
            first.url("/api/v1/auth/login")
        } else {
            format!("{second_url}/api/v1/auth/login")
        };
        let answer = first
            .http
            .post(url)
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"email": "ada@example.com", "password": "guess guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "failure {n} is free");
    }
    // Five failures between the two replicas: the sixth waits on either, even with the password.
    let sixth = first.login_from("203.0.113.7", "ada@example.com", "correct horse").await;
    assert!((1..=60).contains(&retry_after(sixth).await));
}

async fn bad_field(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    problem(response).await["errors"][0]["field"].as_str().unwrap_or_default().to_owned()
}

async fn huge_pages_and_nul_searches_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token("root@shop.test").await;
    for deep in ["page=9223372036854775807", "page=200000000000000000&limit=100", "page=10000001&limit=100"] {
        assert_eq!(bad_field(app.get(&format!("/api/v1/users?{deep}"), Some(&admin)).await).await, "page");
    }
    // PostgreSQL refuses NUL in text; it must be the client's 400 there as on SQLite.
    for q in ["ro%00ot", "%00", "a%01b"] {
        assert_eq!(bad_field(app.get(&format!("/api/v1/users?q={q}"), Some(&admin)).await).await, "q", "{q}");
    }
    let long = "x".repeat(201);
    assert_eq!(bad_field(app.get(&format!("/api/v1/users?q={long}"), Some(&admin)).await).await, "q");
    // The document names the last page, whatever the page size.
    assert_eq!(bad_field(app.get("/api/v1/users?page=10002", Some(&admin)).await).await, "page");
    assert_eq!(app.get("/api/v1/users?page=10001&limit=100", Some(&admin)).await.status(), 200);
    let found: Value = app.get("/api/v1/users?q=root", Some(&admin)).await.json().await.unwrap();
    assert_eq!(found["total"], 1);
}

#[tokio::test]
async fn huge_pages_and_nul_searches_are_400_on_sqlite() {
    huge_pages_and_nul_searches_are_400(Backend::Sqlite).await;
}

#[tokio::test]
async fn huge_pages_and_nul_searches_are_400_on_postgres() {
    huge_pages_and_nul_searches_are_400(Backend::Postgres).await;
}

async fn the_last_admin_cannot_remove_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let root = app.admin_token("root@shop.test").await;
    let me: Value = app.get("/api/v1/users/me", Some(&root)).await.json().await.unwrap();
    let own = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    for refused in [
        app.delete(&own, &root).await,
        app.patch(&own, json!({"role": "customer"}), &root).await,
        app.delete("/api/v1/users/me", &root).await,
    ] {
        assert_eq!(refused.status(), 409);
        let body = problem(refused).await;
        assert!(body["detail"].as_str().unwrap().contains("last administrator"), "{body}");
    }
    assert_eq!(app.get("/api/v1/users", Some(&root)).await.status(), 200, "still an admin");

    // Once another admin exists, stepping down is fine.
    let other = app.admin_token("other@shop.test").await;
    assert_eq!(app.patch(&own, json!({"role": "customer"}), &other).await.status(), 200);
    let other_me: Value = app.get("/api/v1/users/me", Some(&other)).await.json().await.unwrap();
    let other_path = format!("/api/v1/users/{}", other_me["id"].as_str().unwrap());
    assert_eq!(app.delete(&other_path, &other).await.status(), 409, "now the last one");
}

#[tokio::test]
async fn the_last_admin_cannot_remove_itself_on_sqlite() {
    the_last_admin_cannot_remove_itself(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_last_admin_cannot_remove_itself_on_postgres() {
    the_last_admin_cannot_remove_itself(Backend::Postgres).await;
}

/// The revocation feed replicas of the other services read when they start: the deletions and
/// role changes since a time, oldest first, on both backends; a bad `since` is a 400.
#[tokio::test]
async fn the_revocation_feed_lists_deletions_and_role_changes_since_a_time() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app(backend).await;
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let root = app.admin_token("root@shop.test").await;
        let deputy = app.admin_token("deputy@shop.test").await;
        let deputy_id = app.get("/api/v1/users/me", Some(&deputy)).await.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let demote =
            app.patch(&format!("/api/v1/users/{deputy_id}"), json!({"role": "customer"}), &root).await;
        assert_eq!(demote.status(), 200);
        let gone = app.register("gone@example.com").await;
        let gone_token = gone["access_token"].as_str().unwrap();
        assert_eq!(app.delete("/api/v1/users/me", gone_token).await.status(), 204);

        let since = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let feed: Value =
            app.get(&format!("/internal/v1/revocations?since={since}"), None).await.json().await.unwrap();
        let types: Vec<&str> =
            feed["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["mercato.user.role_changed.v1", "mercato.user.deleted.v1"], "{backend:?}: {feed}");
        assert_eq!(feed["items"][0]["data"]["user_id"], deputy_id.as_str());
        assert_eq!(feed["items"][1]["data"]["user_id"], gone["user"]["id"]);
        assert_eq!(feed["next_after"], Value::Null);

        let later = (chrono::Utc::now() + chrono::Duration::seconds(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let empty: Value =
            app.get(&format!("/internal/v1/revocations?since={later}"), None).await.json().await.unwrap();
        assert_eq!(empty["items"], json!([]));
        let bad = app.get("/internal/v1/revocations?since=yesterday", None).await;
        assert_eq!(bad.status(), 400);
        assert_eq!(problem(bad).await["status"], 400);
    }
}

#[test]
fn a_sent_event_retention_shorter_than_an_access_token_is_refused() {
    let mut config = UsersConfig {
        database: kit::config::DatabaseConfig::with_url("sqlite://unused.db".to_owned()),
        ..UsersConfig::default()
    };
    config.auth.signing_key = Some("unused".into());
    config.auth.access_token_ttl_secs = 900;
    config.events.sent_retention_secs = 600;
    let error = kit::config::Settings::validate(&config).unwrap_err().to_string();
    assert!(error.contains("events.sent_retention_secs"), "{error}");
}
