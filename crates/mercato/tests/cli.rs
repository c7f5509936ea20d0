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
    let (child, url, _) = start_up_with(mercato().args(["up", "--listen", "127.0.0.1:0"]), data_dir);
    (child, url)
}

/// Starts `command` (a `mercato up`) on `data_dir`; answers its gateway URL and its banner, the
/// lines from the URL to "Ctrl-C stops it.".
fn start_up_with(command: &mut Command, data_dir: &std::path::Path) -> (Child, String, Vec<String>) {
    let mut child = command
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mercato starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let url = loop {
        let line = lines.next().expect("mercato printed its URL before exiting").expect("utf-8");
        if let Some(rest) = line.trim().strip_prefix("mercato is running: ") {
            break rest.trim().to_owned();
        }
    };
    for line in lines.by_ref() {
        let line = line.expect("utf-8");
        if line.trim() == "Ctrl-C stops it." {
            break;
        }
        banner.push(line.trim().to_owned());
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url, banner)
}

/// The address after `label` on the banner line that starts with it (`health   http://…/readyz`
/// → `127.0.0.1:…`; `services users …, products …` with label `products`).
fn banner_addr(banner: &[String], label: &str) -> String {
    banner
        .iter()
        .find_map(|line| {
            let after = &line[line.find(label)? + label.len()..];
            let after = after.trim_start().trim_start_matches("http://");
            Some(after.split(['/', ',', ' ']).next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no {label} on the banner: {banner:?}"))
}

/// Stops a shop started by a test, and checks it stopped cleanly.
fn stop(mut child: Child) {
    sigterm(&child);
    let exit = wait_with_deadline(&mut child, Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
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

#[test]
fn a_second_shop_on_the_same_data_dir_is_refused_naming_the_first() {
    let data_dir = tempfile::tempdir().unwrap();
    let (first, _) = start_up(data_dir.path());
    let second = mercato()
        .args(["up", "--no-seed", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success(), "two shops on one data directory");
    let expected = format!("is in use by another mercato (pid {})", first.id());
    assert!(stderr(&second).contains(&expected), "{}", stderr(&second));
    stop(first);

    let (after, _) = start_up(data_dir.path());
    stop(after);
}

#[test]
fn a_port_in_use_is_refused_naming_listen_before_the_data_dir_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let output = mercato().args(["up", "--listen", &addr, "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot listen on {addr} (--listen): it is in use")),
        "{}",
        stderr(&output)
    );
    assert!(!data_dir.exists(), "nothing created, keyed, migrated or seeded");
}

#[test]
fn up_listens_on_localhost_with_a_port() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, url, _) =
        start_up_with(mercato().args(["up", "--no-seed", "--listen", "localhost:0"]), data_dir.path());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    stop(child);
}

#[test]
fn an_unwritable_data_dir_or_database_file_is_named_with_the_reason() {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_a_file = file.join("data");
    let output =
        mercato().args(["up", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&under_a_file).output().unwrap();
    assert!(!output.status.success());
    let expected = format!("cannot create the data directory {}: Not a directory", under_a_file.display());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));

    // SQLite says only "unable to open database file"; the OS says why.
    let data_dir = parent.path().join("shop");
    std::fs::create_dir_all(data_dir.join("users.db")).unwrap();
    let output =
        mercato().args(["up", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(!output.status.success());
    let expected = format!("cannot open SQLite {}: Is a directory", data_dir.join("users.db").display());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
}

#[test]
fn an_unreachable_postgres_is_named_with_the_cause_once() {
    let output = mercato()
        .args(["migrate", "users"])
        .env("MERCATO_DATABASE__URL", "postgres://shop:hunter2@127.0.0.1:1/shop_users")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains("cannot connect to PostgreSQL 127.0.0.1:1/shop_users: Connection refused"),
        "{said}"
    );
    assert_eq!(said.matches("Connection refused").count(), 1, "{said}");
    assert!(!said.contains("hunter2") && !said.contains("timed out"), "{said}");
}

#[test]
fn a_missing_database_is_said_once_with_how_to_create_it() {
    let name = format!("t_cli_missing_{}", std::process::id());
    let url = format!("{}/{name}", kit::testing::postgres_server_url().rsplit_once('/').unwrap().0);
    let output = mercato().args(["migrate", "orders"]).env("MERCATO_DATABASE__URL", &url).output().unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert_eq!(said.matches(&format!("database \"{name}\" does not exist")).count(), 1, "{said}");
    assert!(said.contains(&format!("createdb -h 127.0.0.1 -p 5432 -U postgres {name}")), "{said}");
}

/// The address a `mercato serve` logs when it listens, from its JSON log on `stdout`, which
/// is drained from then on.
fn listening_address(stdout: std::process::ChildStdout) -> String {
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                && entry["message"] == "listening"
                && let Some(addr) = entry["addr"].as_str()
            {
                let _ = found.send(addr.to_owned());
            }
        }
    });
    address.recv_timeout(Duration::from_secs(30)).expect("mercato serve logged where it listens")
}

#[tokio::test]
async fn serve_stays_unready_until_its_database_answers_at_its_schema_then_is_ready() {
    let server = kit::testing::postgres_server_url();
    let name = format!("t_cli_later_{}", std::process::id());
    let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let keys = tempfile::tempdir().unwrap();
    let mut child = mercato()
        .args(["serve", "users"])
        .env("MERCATO_DATABASE__URL", &url)
        .env("MERCATO_DATABASE__MIGRATE_ON_START", "false")
        .env("MERCATO_DATABASE__ACQUIRE_TIMEOUT_MS", "500")
        .env("MERCATO_AUTH__SIGNING_KEY_FILE", keys.path().join("key.pem"))
        .env("MERCATO_AUTH__GENERATE_SIGNING_KEY", "true")
        .env("MERCATO_HTTP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_address(child.stdout.take().unwrap());

    let readyz = format!("http://{addr}/readyz");
    let unready = reqwest::get(&readyz).await.unwrap();
    assert_eq!(unready.status(), 503, "no database yet, but the service runs");
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 200);

    kit::db::create_postgres_database(&server, &name).await.unwrap();
    // The database answers, but its schema is not the one this binary expects until migrated.
    let deadline = Instant::now() + Duration::from_secs(10);
    let unmigrated = loop {
        let answer = reqwest::get(&readyz).await.unwrap().text().await.unwrap();
        if answer.contains("not applied") || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let migrated = mercato().args(["migrate", "users"]).env("MERCATO_DATABASE__URL", &url).output().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let status = reqwest::get(&readyz).await.unwrap().status();
        if status == 200 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sigterm(&child);
    let exit = wait_with_deadline(&mut child, Duration::from_secs(30));
    let admin = sea_orm_migration::sea_orm::Database::connect(&server).await.unwrap();
    sea_orm_migration::sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await
    .unwrap();
    assert!(unmigrated.contains("run `mercato migrate users`"), "{unmigrated}");
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_eq!(ready, 200, "ready once the database answers at the expected schema");
    assert!(exit.success());
}

#[test]
fn a_mistyped_variable_is_warned_about_with_the_name_meant() {
    let data_dir = tempfile::tempdir().unwrap();
    let log = data_dir.path().join("up.log");
    let mut child = mercato()
        .args(["up", "--no-seed", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("MERCATO_USER__DATABASE__URL", "postgres://postgres@127.0.0.1:5432/shop_users")
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap().contains("mercato is running") {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "mercato up did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("MERCATO_USER__DATABASE__URL is not read by `mercato up` and is ignored; did you mean MERCATO_USERS__DATABASE__URL?"),
        "{text}"
    );

    let serve =
        mercato().args(["serve", "users"]).env("MERCATO_DATABSE__URL", "sqlite::memory:").output().unwrap();
    assert!(!serve.status.success());
    assert!(
        stdout(&serve).contains("MERCATO_DATABSE__URL is not read by `mercato serve users` and is ignored; did you mean MERCATO_DATABASE__URL?"),
        "{}",
        stdout(&serve)
    );
}

#[tokio::test]
async fn the_banner_says_where_each_service_keeps_its_data_and_never_a_password() {
    let database = kit::testing::TestDatabase::new(kit::testing::Backend::Postgres, "cli_banner").await;
    let with_password = database.config.url.replacen("postgres@", "postgres:not-shown@", 1);
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().display();
    let (child, _, banner) = start_up_with(
        mercato()
            .args(["up", "--no-seed", "--listen", "127.0.0.1:0"])
            .env("MERCATO_PRODUCTS__DATABASE__URL", &with_password),
        data_dir.path(),
    );
    stop(child);
    let banner = banner.join("\n");
    for expected in [
        format!("users    SQLite {dir}/users.db"),
        "products PostgreSQL 127.0.0.1:5432/t_cli_banner_".to_owned(),
        format!("orders   SQLite {dir}/orders.db"),
        format!("keys     {dir}/keys/users-signing-key.pem"),
        format!("images   {dir}/images"),
    ] {
        assert!(banner.contains(&expected), "{expected:?} in\n{banner}");
    }
    assert!(!banner.contains("not-shown"), "{banner}");
}

#[test]
fn probe_reaches_a_shop_by_url_or_by_an_address_with_a_host_name() {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, url, banner) =
        start_up_with(mercato().args(["up", "--listen", "127.0.0.1:0"]), data_dir.path());
    let operations = banner_addr(&banner, "health");
    let port = operations.rsplit(':').next().unwrap();
    let by_url = mercato().args(["probe", &format!("http://{operations}/readyz")]).output().unwrap();
    assert!(by_url.status.success(), "{}", stderr(&by_url));
    let by_addr = mercato().args(["probe", "--addr", &format!("localhost:{port}")]).output().unwrap();
    assert!(by_addr.status.success(), "/readyz by default: {}", stderr(&by_addr));
    let public = mercato().args(["probe", &format!("{url}/readyz")]).output().unwrap();
    assert!(stderr(&public).contains("answered 404"), "not on the public port: {}", stderr(&public));
    let missing =
        mercato().args(["probe", "/nowhere", "--addr", &format!("localhost:{port}")]).output().unwrap();
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("answered 404"), "{}", stderr(&missing));
    stop(child);

    let help = mercato().args(["probe", "--help"]).output().unwrap();
    let help = stdout(&help);
    assert!(help.contains("--addr <HOST:PORT>") && help.contains("127.0.0.1:9090"), "{help}");
    assert!(help.contains("http://localhost:8080/readyz"), "{help}");
}

#[test]
fn env_lists_every_variable_with_its_default_and_marks_the_required_ones() {
    let listed = stdout(&mercato().args(["env", "users"]).output().unwrap());
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in\n{listed}"))
            .to_owned()
    };
    assert!(line("MERCATO_DATABASE__URL").contains("required"));
    assert!(line("MERCATO_AUTH__SIGNING_KEY").contains("required, or MERCATO_AUTH__SIGNING_KEY_FILE"));
    assert!(line("MERCATO_DATABASE__MAX_CONNECTIONS").ends_with(" 16"));
    assert!(line("MERCATO_HTTP__LISTEN").ends_with(" 127.0.0.1:8081"));
    assert!(line("MERCATO_LOG").contains("RUST_LOG"));
    for process_wide in ["MERCATO_LOG_FORMAT", "MERCATO_CONFIG", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        line(process_wide);
    }

    let names = stdout(&mercato().args(["env", "users", "--names"]).output().unwrap());
    assert!(names.lines().all(|l| l.starts_with("MERCATO_") && !l.contains(' ')), "{names}");
    assert!(names.lines().any(|l| l == "MERCATO_DATABASE__URL"), "{names}");
}

/// `mercato env <service> --check` in an environment of exactly `vars`.
fn check_with(service: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mercato"));
    command.env_clear().args(["env", service, "--check"]);
    command.envs(vars.iter().copied()).output().unwrap()
}

#[test]
fn the_required_variables_are_exactly_those_check_refuses_without() {
    let (_, pem) = users::tokens::SigningKey::generate().unwrap();
    let required: [(&str, Vec<(&str, &str)>); 5] = [
        ("gateway", vec![]),
        ("users", vec![("MERCATO_DATABASE__URL", "sqlite::memory:"), ("MERCATO_AUTH__SIGNING_KEY", &pem)]),
        ("products", vec![("MERCATO_DATABASE__URL", "sqlite::memory:")]),
        (
            "orders",
            vec![
                ("MERCATO_DATABASE__URL", "sqlite::memory:"),
                ("MERCATO_SERVICE_CLIENT_SECRET", "sixteen chars ok"),
            ],
        ),
        (
            "carts",
            vec![
                ("MERCATO_REDIS__URL", "redis://127.0.0.1:6379"),
                ("MERCATO_SERVICE_CLIENT_SECRET", "sixteen chars ok"),
            ],
        ),
    ];
    for (service, vars) in required {
        let listed = stdout(&mercato().args(["env", service]).output().unwrap());
        let marked: Vec<&str> = listed
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(" required"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut marked = marked;
        marked.sort_unstable();
        let mut names: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        assert_eq!(marked, names, "{service}: marked required in\n{listed}");
        let all = check_with(service, &vars);
        assert!(all.status.success(), "{service}: {}", stderr(&all));
        for left_out in &names {
            let fewer: Vec<(&str, &str)> =
                vars.iter().copied().filter(|(name, _)| name != left_out).collect();
            assert!(!check_with(service, &fewer).status.success(), "{service} starts without {left_out}");
        }
    }
}

#[test]
fn env_check_validates_the_signing_key_and_secrets_as_serve_does() {
    let sqlite = ("MERCATO_DATABASE__URL", "sqlite::memory:");
    let garbage = check_with("users", &[sqlite, ("MERCATO_AUTH__SIGNING_KEY", "not a key")]);
    assert!(!garbage.status.success());
    assert!(stderr(&garbage).contains("not a PEM-encoded PKCS#8 Ed25519 key"), "{}", stderr(&garbage));

    let missing = check_with("users", &[sqlite, ("MERCATO_AUTH__SIGNING_KEY_FILE", "/nonexistent/key.pem")]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("cannot read the signing key file /nonexistent/key.pem"),
        "{}",
        stderr(&missing)
    );

    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("key.pem");
    let (_, pem) = users::tokens::SigningKey::generate().unwrap();
    std::fs::write(&key_file, pem).unwrap();
    let key_file = key_file.to_str().unwrap();
    let readable = check_with("users", &[sqlite, ("MERCATO_AUTH__SIGNING_KEY_FILE", key_file)]);
    assert!(readable.status.success(), "{}", stderr(&readable));

    let published = check_with(
        "users",
        &[
            sqlite,
            ("MERCATO_AUTH__SIGNING_KEY_FILE", key_file),
            ("MERCATO_AUTH__PUBLISHED_KEYS_FILE", "/nonexistent/next.pem"),
        ],
    );
    assert!(!published.status.success());
    assert!(stderr(&published).contains("MERCATO_AUTH__PUBLISHED_KEYS_FILE"), "{}", stderr(&published));
    let rotating = check_with(
        "users",
        &[
            sqlite,
            ("MERCATO_AUTH__SIGNING_KEY_FILE", key_file),
            ("MERCATO_AUTH__PUBLISHED_KEYS_FILE", key_file),
        ],
    );
    assert!(rotating.status.success(), "{}", stderr(&rotating));

    let short = check_with(
        "users",
        &[sqlite, ("MERCATO_AUTH__SIGNING_KEY_FILE", key_file), ("MERCATO_SERVICE_CLIENTS__ORDERS", "short")],
    );
    assert!(stderr(&short).contains("must be a secret of at least 16 characters"), "{}", stderr(&short));
    let short = check_with("orders", &[sqlite, ("MERCATO_SERVICE_CLIENT_SECRET", "short")]);
    assert!(!short.status.success());
    assert!(
        stderr(&short).contains("must be a secret of at least 16 characters (it has 5)"),
        "{}",
        stderr(&short)
    );
    assert!(!stderr(&short).contains("required"), "{}", stderr(&short));
}

#[test]
fn bench_against_the_rate_limit_says_so_and_how_to_lift_it_and_fails() {
    let data_dir = tempfile::tempdir().unwrap();
    let (shop, url, banner) = start_up_with(
        mercato()
            .args(["up", "--no-seed", "--listen", "127.0.0.1:0"])
            .env("MERCATO_GATEWAY__RATE_LIMIT__PER_SECOND", "1")
            .env("MERCATO_GATEWAY__RATE_LIMIT__BURST", "1"),
        data_dir.path(),
    );
    let products = format!("http://{}", banner_addr(&banner, "products"));
    let bench = mercato()
        .args(["bench", "--target", &url, "--service", &products, "--scenario", "proxy", "--rate", "40"])
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    stop(shop);
    assert!(!bench.status.success(), "most requests were the limiter's: {}", stdout(&bench));
    let said = stderr(&bench);
    assert!(said.contains("hit the gateway's rate limit (429)"), "{said}");
    assert!(said.contains("MERCATO_GATEWAY__RATE_LIMIT__ENABLED=false"), "{said}");
    assert!(stdout(&bench).contains("429×"), "the table still shows them: {}", stdout(&bench));
}

#[test]
fn events_watch_names_the_known_types_for_an_unknown_one_and_fails_fast_without_a_broker() {
    let output = mercato()
        .args([
            "events",
            "watch",
            "--url",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "--type",
            "mercato.order.lost.v1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("mercato.order.placed.v1"), "{}", stderr(&output));

    let started = Instant::now();
    let output =
        mercato().args(["events", "watch", "--url", "amqp://guest:guest@127.0.0.1:1/%2f"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot declare the queue"), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(10), "it says so at once, not after retries");
}

/// The watcher prints what a relay publishes as CloudEvents JSON lines (the real broker,
/// `MERCATO_TEST_AMQP_URL`).
#[test]
fn events_watch_prints_each_published_event_as_a_json_line() {
    let url = std::env::var("MERCATO_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    // One name for every run (no queue left behind per run); older runs' events are skipped.
    let queue = "mercato-cli-watch-test".to_owned();
    let declared = mercato()
        .args(["events", "watch", "--url", &url, "--queue", &queue, "--declare-only"])
        .output()
        .unwrap();
    assert!(declared.status.success(), "{}", stderr(&declared));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let user_id = uuid::Uuid::now_v7();
    runtime.block_on(async {
        use kit::events::Publisher;
        let at = chrono::Utc::now();
        let event = contracts::events::CloudEvent::new(
            "/mercato/users",
            at,
            None,
            contracts::events::UserDeleted { user_id, deleted_at: at },
        );
        let publisher = kit::events::Broker::new(&url, contracts::events::EXCHANGE).publisher();
        publisher.publish(&[event.into_json().unwrap()]).await.unwrap();
    });
    let mut child = mercato()
        .args(["events", "watch", "--url", &url, "--queue", &queue, "--type", "mercato.user.deleted.v1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed: serde_json::Value = loop {
        let line = lines.next().expect("a line before the watcher exits").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["data"]["user_id"] == user_id.to_string() {
            break event;
        }
    };
    assert_eq!(printed["type"], "mercato.user.deleted.v1");
    assert_eq!(printed["specversion"], "1.0");
    sigterm(&child);
    assert!(wait_with_deadline(&mut child, Duration::from_secs(10)).success());
}
