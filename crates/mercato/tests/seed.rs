//! `mercato seed` as a person runs it: generated products and a catalog file into the embedded
//! shop's products database, with the summary, rejected records and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::path::Path;
use std::process::{Command, Output, Stdio};

const DUMMYJSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/dummyjson-products.json");
const BESTBUY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/algolia-bestbuy-ecommerce.json");

fn seed(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mercato"))
        .env_remove("MERCATO_DATABASE__URL")
        .env_remove("MERCATO_DATA_DIR")
        .arg("seed")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("mercato runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The summary line, without its timing.
fn summary(output: &Output) -> String {
    let stdout = text(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("imported "))
        .unwrap_or_else(|| panic!("no summary in {stdout:?}"));
    line.split(" in ").next().unwrap().to_owned()
}

#[test]
fn generate_then_import_a_file_then_import_it_again() {
    let data_dir = tempfile::tempdir().unwrap();

    let generated = seed(&["--generate", "50"], data_dir.path());
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    assert_eq!(summary(&generated), "imported 50 products (50 new, 0 updated, 0 rejected)");
    assert!(text(&generated.stdout).contains("/s)"), "the rate is shown");
    assert!(
        text(&generated.stdout).starts_with("generated 50 products with seed "),
        "{}",
        text(&generated.stdout)
    );
    assert!(data_dir.path().join("products.db").exists(), "the embedded shop's products database");

    let file = seed(&["--file", DUMMYJSON], data_dir.path());
    assert!(file.status.success(), "{}", text(&file.stderr));
    assert_eq!(summary(&file), "imported 194 products (194 new, 0 updated, 0 rejected)");
    assert!(
        text(&file.stdout).contains("dummyjson-products.json (format dummyjson, detected)"),
        "{}",
        text(&file.stdout)
    );

    let again = seed(&["--file", DUMMYJSON, "--format", "dummyjson"], data_dir.path());
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(summary(&again), "imported 194 products (0 new, 194 updated, 0 rejected)");

    let regenerated = seed(&["--generate", "50"], data_dir.path());
    assert_eq!(summary(&regenerated), "imported 50 products (0 new, 50 updated, 0 rejected)");
}

#[test]
fn rejected_records_are_printed_and_do_not_fail_the_import() {
    let data_dir = tempfile::tempdir().unwrap();
    let csv = data_dir.path().join("catalog.csv");
    std::fs::write(
        &csv,
        "name,description,category,price\nLamp,A lamp.,Office,49.99\n,No name.,Office,1.00\n",
    )
    .unwrap();
    let output = seed(&["--file", csv.to_str().unwrap()], data_dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(summary(&output), "imported 1 products (1 new, 0 updated, 1 rejected)");
    assert!(text(&output.stderr).contains("record 2: name: is required"), "{}", text(&output.stderr));
}

#[test]
fn nothing_importable_is_an_error() {
    let data_dir = tempfile::tempdir().unwrap();
    let bad = data_dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"name\": \"No price\", \"description\": \"x\", \"category\": \"Office\"}\n")
        .unwrap();
    let output = seed(&["--file", bad.to_str().unwrap()], data_dir.path());
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("record 1: price: is required"), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("could be imported"), "{}", text(&output.stderr));

    let missing = seed(&["--file", "/nonexistent/catalog.json"], data_dir.path());
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("cannot read /nonexistent/catalog.json"),
        "{}",
        text(&missing.stderr)
    );
    assert_eq!(
        text(&missing.stderr).matches("os error 2").count(),
        1,
        "the OS error once: {}",
        text(&missing.stderr)
    );

    let empty = data_dir.path().join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let output = seed(&["--file", empty.to_str().unwrap()], data_dir.path());
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no records were read"), "{}", text(&output.stderr));
}

#[test]
fn help_explains_the_sources_and_formats() {
    let output = Command::new(env!("CARGO_BIN_EXE_mercato")).args(["seed", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = text(&output.stdout);
    for expected in [
        "--generate <N>",
        "--seed <S>",
        "--file <PATH>",
        "--format <F>",
        "--data-dir <DIR>",
        "dummyjson",
        "bestbuy",
    ] {
        assert!(help.contains(expected), "{expected} in {help}");
    }
}

#[test]
fn a_file_in_another_format_shows_the_first_rejections_then_their_count() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = seed(&["--file", BESTBUY, "--format", "dummyjson"], data_dir.path());
    assert!(!output.status.success(), "nothing could be imported");
    let stderr = text(&output.stderr);
    let shown = stderr.lines().filter(|l| l.starts_with("record ")).count();
    assert_eq!(shown, 20, "{stderr}");
    let rejected: usize = summary(&output)
        .rsplit(", ")
        .next()
        .and_then(|part| part.trim_end_matches(" rejected)").parse().ok())
        .unwrap_or_else(|| panic!("the summary counts the rejections: {}", summary(&output)));
    assert!(
        stderr.contains(&format!("… and {} more rejected records, not shown", rejected - 20)),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_goes_away_does_not_crash_the_import() {
    let data_dir = tempfile::tempdir().unwrap();
    let csv = data_dir.path().join("catalog.csv");
    let mut rows = String::from("sku,name,description,category,price\n");
    for n in 0..30 {
        rows.push_str(&format!(
            "LMP-{n:03},Lamp {n},A lamp.,Office,49.99\nBAD-{n:03},,No name.,Office,1.00\n"
        ));
    }
    std::fs::write(&csv, rows).unwrap();
    // As `mercato seed … 2>&1 | head -n 0`: both pipes are closed before anything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mercato"))
        .env_remove("MERCATO_DATABASE__URL")
        .args(["seed", "--file"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "the import succeeds whoever reads its output: {status}");
    let again = seed(&["--file", csv.to_str().unwrap()], data_dir.path());
    assert_eq!(summary(&again), "imported 30 products (0 new, 30 updated, 30 rejected)");
}
