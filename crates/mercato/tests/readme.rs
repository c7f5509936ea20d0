//! README.md's shell blocks, run as a reader runs them: one after the other in one shell, in a
//! fresh directory, against this build. What a test cannot take literally is rewritten, and
//! only that:
//!
//! - `cargo` is a shell function standing for this build of `mercato`: `cargo run --release --
//!   ARGS` runs it with ARGS; `cargo run --release` starts the shop in the background (stopping
//!   the one an earlier block started, as a reader would with Ctrl-C) and returns once it runs;
//!   `… serve SERVICE` likewise; `cargo test --workspace` is the run this test is part of.
//! - The shop's `localhost:8080` and the lone service's `127.0.0.1:8081` become free ports.
//! - The `mercato_<service>` PostgreSQL databases get a name of their own for this run, on the
//!   server of `MERCATO_TEST_POSTGRES_URL`, and are dropped afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../../README.md");

/// A fenced ```sh block and the README line its first command is on.
struct Snippet {
    line: usize,
    code: String,
}

fn sh_blocks(markdown: &str) -> Vec<Snippet> {
    let mut snippets = Vec::new();
    let mut open: Option<Snippet> = None;
    for (index, line) in markdown.lines().enumerate() {
        match (&mut open, line.trim_end()) {
            (None, "```sh") => open = Some(Snippet { line: index + 2, code: String::new() }),
            (Some(_), "```") => snippets.extend(open.take()),
            (Some(snippet), code) => {
                snippet.code.push_str(code);
                snippet.code.push('\n');
            }
            (None, _) => {}
        }
    }
    snippets
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The databases this run creates, dropped however the test ends.
struct Databases {
    prefix: String,
}

impl Drop for Databases {
    fn drop(&mut self) {
        let server = kit::testing::postgres_server_url();
        for service in ["users", "products", "orders"] {
            let _ = Command::new("psql")
                .args([server.as_str(), "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS \"{}_{service}\" WITH (FORCE)", self.prefix))
                .output();
        }
    }
}

/// The shell that runs the blocks: `cargo` as described above, the shops it starts stopped on
/// exit, and curl bounded in time so that a stuck request fails the test instead of hanging it.
const PRELUDE: &str = r#"
set -euo pipefail
exec 2>&1
started=()
stop_started() {
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  started=()
}
trap stop_started EXIT
# Starts `$MERCATO "$@"` in the background and returns once its log shows `ready`.
start() {
  local ready=$1; shift
  local log; log=$(mktemp -p "$PWD" started.XXXX.log)
  "$MERCATO" "$@" >"$log" 2>&1 &
  local pid=$!
  started+=("$pid")
  for _ in $(seq 1 600); do
    if grep -q "$ready" "$log"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "mercato $* exited" >&2; return 1; fi
    sleep 0.05
  done
  cat "$log"; echo "mercato $* did not start within 30 s" >&2; return 1
}
cargo() {
  case "$*" in
    "run --release") stop_started; start "mercato is running" ;;
    "run --release -- serve "*) start '"listening"' "${@:4}" ;;
    "run --release -- "*) "$MERCATO" "${@:4}" ;;
    "test --workspace") echo "(cargo test --workspace: the run this test is part of)" ;;
    *) echo "README runs cargo $*, which this test does not know" >&2; return 1 ;;
  esac
}
"#;

#[test]
fn every_shell_block_of_the_readme_runs() {
    let snippets = sh_blocks(README);
    assert!(snippets.len() >= 5, "README.md's ```sh blocks: {}", snippets.len());
    let shop_port = free_port();
    let service_port = free_port();
    let databases = Databases { prefix: format!("t_readme_{}_{shop_port}", std::process::id()) };

    let mut script = String::from(PRELUDE);
    for snippet in &snippets {
        let code = snippet
            .code
            .replace("localhost:8080", &format!("127.0.0.1:{shop_port}"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{service_port}"))
            .replace("mercato_$db", &format!("{}_$db", databases.prefix));
        let code = ["users", "products", "orders"].iter().fold(code, |code, service| {
            code.replace(&format!("/mercato_{service}"), &format!("/{}_{service}", databases.prefix))
        });
        script.push_str(&format!("\necho '### README.md line {}'\n{code}", snippet.line));
    }
    script.push_str("\necho '### every block ran'\n");

    let dir = tempfile::tempdir().unwrap();
    let curl_home = dir.path().join("curl");
    std::fs::create_dir(&curl_home).unwrap();
    std::fs::write(curl_home.join(".curlrc"), "max-time = 60\n").unwrap();
    let shop = dir.path().join("shop");
    std::fs::create_dir(&shop).unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&shop)
        .env("MERCATO", env!("CARGO_BIN_EXE_mercato"))
        // Where `cargo run --release` puts the shop in this test (README: its default, 8080).
        .env("MERCATO_LISTEN", format!("127.0.0.1:{shop_port}"))
        .env("MERCATO_LOG_FORMAT", "json")
        .env("CURL_HOME", &curl_home)
        .env_remove("MERCATO_DATABASE__URL")
        .env_remove("MERCATO_DATA_DIR")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && said.ends_with("### every block ran\n"), "{said}");

    // What the blocks say they do, they did.
    assert!(said.contains(r#""access_token":"#), "the tour registered Ada:\n{said}");
    assert!(said.contains(r#""errors":[{"field":"name","message":"is required"}]"#), "{said}");
    assert!(!said.contains(r#""status":50"#), "no request failed on the server's side:\n{said}");
    assert_eq!(said.matches("created admin root@example.com").count(), 2, "SQLite and PostgreSQL:\n{said}");
    assert!(said.contains(&format!("(PostgreSQL 127.0.0.1:5432/{}_users)", databases.prefix)), "{said}");
    assert!(said.contains("users (PostgreSQL "), "the lone service's migration ran:\n{said}");
    assert!(Path::new(&shop).join("data/mercato.lock").exists(), "the shop ran in ./data");
}
