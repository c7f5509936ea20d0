//! The `mercato` binary as a person or a container runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mercato() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mercato"));
    command
        .env("MERCATO_LOG_FORMAT", "json")
        .env_remove("MERCATO_DATABASE__URL")
        .env_remove("MERCATO_DATA_DIR")
        .env_remove("MERCATO_LISTEN");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `mercato args…` run in `dir`, as a person in their shop's directory runs it.
fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    mercato().current_dir(dir).args(args).output().expect("mercato runs")
}

/// Starts `mercato up` on a free port and answers its gateway URL, read from the banner.
fn start_up(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = mercato()
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mercato starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("mercato printed its URL before exiting").expect("utf-8");
        if let Some(rest) = line.trim().strip_prefix("mercato is running: ") {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < deadline, "mercato did not exit within {deadline:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn up_serves_the_shop_and_sigterm_exits_zero() {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start_up(data_dir.path());
    let status: serde_json::Value =
        reqwest::get(format!("{url}/api/v1/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["services"]["users"]["ready"], true);
    assert!(data_dir.path().join("users.db").exists(), "one SQLite file per service in the data dir");
    assert!(
        data_dir.path().join("keys/users-signing-key.pem").exists(),
        "the signing key is created on first run"
    );

    sigterm(&child);
    let exit = wait_with_deadline(&mut child, Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
}

#[test]
fn admin_create_then_promote_on_the_embedded_database() {
    let data_dir = tempfile::tempdir().unwrap();
    assert!(mercato().arg("migrate").arg("--data-dir").arg(data_dir.path()).status().unwrap().success());
    let create = mercato()
        .args(["admin", "create", "--email", "root@shop.test", "--password", "root password 1", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
    assert!(String::from_utf8_lossy(&create.stdout).contains("created admin root@shop.test"));

    let again = mercato()
        .args(["admin", "create", "--email", "ROOT@shop.test", "--data-dir"])
        .arg(data_dir.path())
        .env("MERCATO_ADMIN_PASSWORD", "another password")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stdout).contains("is now an admin"));
}

#[test]
fn admin_create_refuses_a_short_password() {
    let data_dir = tempfile::tempdir().unwrap();
    assert!(mercato().arg("migrate").arg("--data-dir").arg(data_dir.path()).status().unwrap().success());
    let output = mercato()
        .args(["admin", "create", "--email", "root@shop.test", "--password", "short", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 8 characters"));
}

#[test]
fn serve_with_a_bad_setting_names_the_key_and_fails() {
    let output = mercato()
        .args(["serve", "users"])
        .env("MERCATO_DATABASE__URL", "mysql://nope")
        .env("MERCATO_AUTH__SIGNING_KEY_FILE", "/nonexistent")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.url"), "{stderr}");
}

#[test]
fn serve_without_a_signing_key_refuses_to_start() {
    let output = mercato()
        .args(["serve", "users"])
        .env("MERCATO_DATABASE__URL", "sqlite::memory:")
        .env_remove("MERCATO_AUTH__SIGNING_KEY")
        .env_remove("MERCATO_AUTH__SIGNING_KEY_FILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth.signing_key"));
}

#[test]
fn migrate_prepares_the_embedded_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = mercato().arg("migrate").arg("--data-dir").arg(data_dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(data_dir.path().join("users.db").exists());
}

/// Starts `mercato up` with its JSON log going to a file; answers the gateway URL.
#[allow(clippy::zombie_processes)] // the caller stops and waits for the child
fn start_up_logging_to(data_dir: &std::path::Path, log: &std::path::Path) -> (Child, String) {
    let mut child = mercato()
        .args(["up", "--no-seed", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mercato starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.trim().starts_with("mercato is running: ")) {
            return (child, line.trim().trim_start_matches("mercato is running: ").to_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mercato did not print its URL");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn one_checkout_is_traced_through_every_service_log() {
    let data_dir = tempfile::tempdir().unwrap();
    let log = data_dir.path().join("mercato.log");
    let (mut child, url) = start_up_logging_to(data_dir.path(), &log);
    let http = reqwest::Client::new();

    let admin = mercato()
        .args(["admin", "create", "--email", "root@shop.test", "--password", "root password 1", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(admin.status.success());
    let token = |body: serde_json::Value, path: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer: serde_json::Value =
                http.post(format!("{url}{path}")).json(&body).send().await.unwrap().json().await.unwrap();
            answer["access_token"].as_str().unwrap().to_owned()
        }
    };
    let root = token(
        serde_json::json!({"email": "root@shop.test", "password": "root password 1"}),
        "/api/v1/auth/login",
    )
    .await;
    let ada = token(
        serde_json::json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse"}),
        "/api/v1/auth/register",
    )
    .await;
    let product: serde_json::Value = http
        .post(format!("{url}/api/v1/products"))
        .bearer_auth(&root)
        .json(&serde_json::json!({"name": "Mug", "description": "A mug.", "price": {"amount": 900, "currency": "USD"}, "category": "Kitchen", "stock": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let address: serde_json::Value = http
        .post(format!("{url}/api/v1/users/me/addresses"))
        .bearer_auth(&ada)
        .json(&serde_json::json!({"line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let placed = http
        .post(format!("{url}/api/v1/orders"))
        .bearer_auth(&ada)
        .header("x-request-id", "checkout-trace-1")
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&serde_json::json!({"items": [{"product_id": product["id"], "quantity": 1}], "shipping_address_id": address["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);

    sigterm(&child);
    assert!(wait_with_deadline(&mut child, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut services = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| l.contains("checkout-trace-1")) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["span"]["trace_id"], trace_id, "{line}");
        services.insert(entry["span"]["service"].as_str().unwrap().to_owned());
    }
    assert_eq!(services.into_iter().collect::<Vec<_>>(), ["gateway", "orders", "products", "users"]);
}

#[test]
fn migrate_alone_migrates_every_database_of_the_default_data_dir_and_says_what_it_applied() {
    let shop = tempfile::tempdir().unwrap();
    let first = run_in(shop.path(), &["migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let said = stdout(&first);
    for service in ["users", "products", "orders"] {
        assert!(said.contains(&format!("{service} (SQLite ./data/{service}.db): applied m")), "{said}");
        assert!(shop.path().join(format!("data/{service}.db")).exists());
    }

    let again = run_in(shop.path(), &["migrate"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).matches(": already up to date").count(), 3, "{}", stdout(&again));
    assert!(!stdout(&again).contains("applied"), "nothing was pending: {}", stdout(&again));
}

#[test]
fn migrate_offers_the_services_with_a_database_and_never_the_gateway() {
    let help = mercato().args(["migrate", "--help"]).output().unwrap();
    assert!(stdout(&help).contains("[possible values: users, products, orders]"), "{}", stdout(&help));
    let gateway = mercato().args(["migrate", "gateway"]).output().unwrap();
    assert!(!gateway.status.success());
    assert!(stderr(&gateway).contains("invalid value 'gateway'"), "{}", stderr(&gateway));
}

#[tokio::test]
async fn migrate_of_a_named_service_uses_its_database_url_and_a_bare_migrate_asks_which() {
    let database = kit::testing::TestDatabase::new(kit::testing::Backend::Postgres, "cli_migrate").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let named = mercato()
        .current_dir(elsewhere.path())
        .args(["migrate", "orders"])
        .env("MERCATO_DATABASE__URL", &database.config.url)
        .output()
        .unwrap();
    assert!(named.status.success(), "{}", stderr(&named));
    assert!(
        stdout(&named).starts_with("orders (PostgreSQL 127.0.0.1:5432/t_cli_migrate_"),
        "{}",
        stdout(&named)
    );
    assert!(!elsewhere.path().join("data").exists(), "nothing written to ./data");

    let bare = mercato()
        .current_dir(elsewhere.path())
        .arg("migrate")
        .env("MERCATO_DATABASE__URL", &database.config.url)
        .output()
        .unwrap();
    assert!(!bare.status.success());
    assert!(
        stderr(&bare).contains("name the service (mercato migrate users|products|orders)"),
        "{}",
        stderr(&bare)
    );
}

#[test]
fn admin_create_and_seed_default_to_the_data_dir_of_up() {
    let shop = tempfile::tempdir().unwrap();
    assert!(run_in(shop.path(), &["migrate"]).status.success());

    let admin = run_in(
        shop.path(),
        &["admin", "create", "--email", "root@shop.test", "--password", "root password 1"],
    );
    assert!(admin.status.success(), "{}", stderr(&admin));
    assert!(
        stdout(&admin)
            .contains("created admin root@shop.test in the users database (SQLite ./data/users.db)")
    );

    let seed = run_in(shop.path(), &["seed", "--generate", "5"]);
    assert!(seed.status.success(), "{}", stderr(&seed));
    assert!(stdout(&seed).contains("into SQLite ./data/products.db"), "{}", stdout(&seed));
}

#[test]
fn admin_create_refuses_a_data_dir_that_holds_no_shop() {
    let somewhere = tempfile::tempdir().unwrap();
    let typo = run_in(
        somewhere.path(),
        &[
            "admin",
            "create",
            "--email",
            "root@shop.test",
            "--password",
            "root password 1",
            "--data-dir",
            "dat",
        ],
    );
    assert!(!typo.status.success());
    assert!(stderr(&typo).contains("no shop in dat: the directory does not exist"), "{}", stderr(&typo));
    assert!(!somewhere.path().join("dat").exists(), "no new, empty shop");

    std::fs::create_dir(somewhere.path().join("empty")).unwrap();
    let empty = run_in(
        somewhere.path(),
        &[
            "admin",
            "create",
            "--email",
            "root@shop.test",
            "--password",
            "root password 1",
            "--data-dir",
            "empty",
        ],
    );
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("it has no users database, empty/users.db"), "{}", stderr(&empty));
    assert!(!somewhere.path().join("empty/users.db").exists());
}

#[tokio::test]
async fn admin_create_honours_the_users_database_of_an_embedded_shop_on_postgres() {
    let database = kit::testing::TestDatabase::new(kit::testing::Backend::Postgres, "cli_admin").await;
    let shop = tempfile::tempdir().unwrap();
    let create = |password: &str| {
        mercato()
            .current_dir(shop.path())
            .args(["admin", "create", "--email", "root@shop.test", "--password", password])
            .env("MERCATO_USERS__DATABASE__URL", &database.config.url)
            .output()
            .unwrap()
    };
    let created = create("root password 1");
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(
        stdout(&created).contains("in the users database (PostgreSQL 127.0.0.1:5432/t_cli_admin_"),
        "{}",
        stdout(&created)
    );
    assert!(!shop.path().join("data/users.db").exists(), "no SQLite file beside the PostgreSQL shop");
    let promoted = create("root password 2");
    assert!(
        stdout(&promoted).contains("root@shop.test is now an admin"),
        "the same database: {}",
        stdout(&promoted)
    );
}
