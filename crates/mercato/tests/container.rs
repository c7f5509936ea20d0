//! What a container relies on beyond `serve`: `mercato env` (the variables its deployment must
//! set, and whether a given environment loads) and `mercato probe` (the image's health check).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mercato` with an empty environment, as a container starts it.
fn mercato() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mercato"));
    command.env_clear().env("MERCATO_LOG_FORMAT", "json");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn env_lists_every_variable_a_service_reads() {
    let output = mercato().args(["env", "products", "--names"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    for expected in
        ["MERCATO_LOG_FORMAT", "MERCATO_DATABASE__URL", "MERCATO_IMAGES__S3__BUCKET", "MERCATO_USERS_URL"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(names.iter().all(|n| n.starts_with("MERCATO_")), "{names:?}");
}

#[test]
fn env_check_loads_the_environment_and_names_a_bad_key() {
    // The Secret a pod mounts: a real key, since --check parses it as serve does.
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("signing-key.pem");
    std::fs::write(&key_file, users::tokens::SigningKey::generate().unwrap().1).unwrap();
    let ok = mercato()
        .args(["env", "users", "--check"])
        .env("MERCATO_DATABASE__URL", "postgres://u@db.invalid/users")
        .env("MERCATO_AUTH__SIGNING_KEY_FILE", &key_file)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));

    let bad = mercato()
        .args(["env", "users", "--check"])
        .env("MERCATO_DATABASE__URL", "postgres://u@db.invalid/users")
        .env("MERCATO_AUTH__SIGNING_KEY_FILE", &key_file)
        .env("MERCATO_AUTH__ACCES_TOKEN_TTL_SECS", "60")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("acces_token_ttl_secs"), "{}", stderr(&bad));
}

/// Starts `mercato serve gateway` on free ports and answers its operations listener's address,
/// read from its log.
fn start_gateway() -> (Child, String) {
    let mut child = mercato()
        .args(["serve", "gateway"])
        .env("MERCATO_HTTP__LISTEN", "127.0.0.1:0")
        .env("MERCATO_HTTP__OPERATIONS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the gateway logged its address").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == "listening" && entry["listener"] == "operations" {
            break entry["addr"].as_str().expect("addr").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[test]
fn probe_passes_while_the_service_is_ready_and_fails_once_it_stopped() {
    let (mut child, addr) = start_gateway();
    let probe = |path: &str| mercato().args(["probe", path, "--addr", &addr]).output().unwrap();

    let ready = probe("/readyz");
    assert!(ready.status.success(), "{}", stderr(&ready));
    let missing = probe("/no-such-path");
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the gateway did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
    assert!(!probe("/readyz").status.success(), "nothing answers once stopped");
}

#[test]
fn probe_reads_the_listen_address_from_the_environment() {
    let (mut child, addr) = start_gateway();
    let output = mercato().arg("probe").env("MERCATO_HTTP__LISTEN", &addr).output().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(output.status.success(), "/readyz on the service's own address: {}", stderr(&output));
}
