//! `mercato seed`: fills a products database with generated demo products or a catalog file,
//! showing progress, the rejected records and a summary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use catalog_import::{self as seed, Format, Progress, SeedSummary};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use kit::config::{ConfigError, DatabaseConfig, Settings};
use products::store::{CatalogImport, SqlCatalog};
use serde::{Deserialize, Serialize};

use crate::chores::Databases;
use crate::embedded::{sqlite_in, with_env_overrides};
use crate::{errln, outln};

/// Examples shown by `mercato seed --help`.
pub const EXAMPLES: &str = "\
Examples:
  mercato seed --generate 1000 --data-dir ./data        the demo catalog of `mercato up`
  mercato seed --generate 100000 --seed 7 --data-dir /tmp/shop
  mercato seed --file products.json --data-dir ./data   format detected from the first record
  mercato seed --file phones.json --format bestbuy      into MERCATO_DATABASE__URL

Formats:
  mercato    the body of POST /api/v1/products plus rating and images, as a JSON array,
             JSON Lines (.jsonl, .ndjson) or CSV (columns name, description, category,
             price in dollars or price_cents, and optional sku, short_description, brand,
             currency, stock, rating, weight_grams, attributes as a JSON object, images
             separated by |)
  dummyjson  DummyJSON's products.json (weight read as kilograms)
  bestbuy    Algolia's Best Buy sample (SKU from the image file name, stock from popularity)

Importing again updates products by SKU; it never duplicates them. A bad record is printed
as `record N: field: problem` and skipped (the first 20; then only their count). The exit
code is non-zero only when nothing could be imported or the database failed.";

/// Rejected records printed one by one; the rest are counted, so a file in the wrong format
/// does not bury the summary under thousands of identical lines.
const REJECTIONS_SHOWN: usize = 20;

/// What `mercato seed` loads, and where.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["generate", "file"])))]
pub struct SeedArgs {
    /// Generate N demo products across twelve departments. The same N and --seed always give
    /// the same products, with SKUs like ELE-VOL-000123 (so a re-run updates them).
    #[arg(long, value_name = "N")]
    pub generate: Option<u64>,
    /// The generator's seed [default: the demo catalog's]
    // `conflicts_with` rather than `requires`: clap lets any member of a group satisfy
    // `requires` (clap-rs/clap#4707).
    #[arg(long, value_name = "S", conflicts_with = "file")]
    pub seed: Option<u64>,
    /// Import this catalog file: a JSON array, JSON Lines or CSV.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The file's format [default: detected from its first record]
    #[arg(long, value_enum, value_name = "F", conflicts_with = "generate")]
    pub format: Option<FileFormat>,
    /// Load into the embedded shop's products database in this directory (DIR/products.db,
    /// or MERCATO_PRODUCTS__DATABASE__URL as for `mercato up`), created and migrated as needed
    /// [default: ./data; with MERCATO_DATABASE__URL set, that database instead, migrated unless
    /// MERCATO_DATABASE__MIGRATE_ON_START=false]
    #[arg(long, value_name = "DIR", env = "MERCATO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// A catalog file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// mercato's own: JSON array, JSON Lines or CSV.
    Mercato,
    /// DummyJSON's products.json.
    Dummyjson,
    /// Algolia's Best Buy sample (ecommerce.json).
    Bestbuy,
}

impl From<FileFormat> for Format {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::Mercato => Format::Mercato,
            FileFormat::Dummyjson => Format::DummyJson,
            FileFormat::Bestbuy => Format::BestBuy,
        }
    }
}

/// The part of the products service's settings seeding needs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct SeedSettings {
    database: DatabaseConfig,
    /// Prices are checked against it, as the service does.
    currency: String,
}

impl Default for SeedSettings {
    fn default() -> Self {
        Self { database: DatabaseConfig::default(), currency: seed::SHOP_CURRENCY.to_owned() }
    }
}

impl Settings for SeedSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate("database")?;
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::invalid("currency", "must be an ISO 4217 code such as USD"));
        }
        Ok(())
    }
}

/// Runs `mercato seed`.
pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let databases = Databases::choose(args.data_dir);
    let settings = settings(&databases)?;
    let migrate = matches!(databases, Databases::DataDir(_)) || settings.database.migrate_on_start;
    // Connect now, migrating or not: kit::db waits lazily only for a service that does not
    // migrate, and seeding needs the database at once.
    let database = DatabaseConfig { migrate_on_start: true, ..settings.database.clone() };
    let store =
        SqlCatalog::new(kit::db::connect(&database).await.context("cannot open the products database")?);
    if migrate {
        store.migrate().await.context("cannot migrate the products database")?;
    }
    let place = kit::db::describe(&database.url);
    let (summary, origin) = match (args.generate, args.file) {
        (Some(count), _) => {
            let seed = args.seed.unwrap_or(seed::DEMO_SEED);
            let products = seed::generate(count, seed).in_currency(&settings.currency);
            let summary = load(&store, products, progress_bar(Some(count))).await?;
            (summary, format!("generated {count} products with seed {seed}"))
        }
        (None, Some(path)) => {
            let mut records =
                seed::import(&path, args.format.map(Format::from))?.in_currency(&settings.currency);
            let summary = load(&store, records.by_ref(), progress_bar(None)).await?;
            let format = match (args.format, records.format()) {
                (Some(_), Some(format)) => format!("format {format}"),
                (None, Some(format)) => format!("format {format}, detected"),
                (_, None) => "no records".to_owned(),
            };
            (summary, format!("read {} ({format})", path.display()))
        }
        (None, None) => anyhow::bail!("pass --generate N or --file PATH"),
    };
    if summary.imported() > 0 {
        store.refresh_statistics().await.context("imported, but cannot refresh the planner's statistics")?;
    }
    outln!("{origin} into {place}");
    outln!("{}", summary_line(&summary));
    if summary.read == 0 {
        anyhow::bail!("nothing to import: no records were read");
    }
    if summary.imported() == 0 {
        anyhow::bail!("no record could be imported ({} rejected)", summary.rejected.len());
    }
    Ok(())
}

fn settings(databases: &Databases) -> anyhow::Result<SeedSettings> {
    match databases {
        Databases::DataDir(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
            let defaults = SeedSettings { database: sqlite_in(dir, "products"), ..SeedSettings::default() };
            with_env_overrides(defaults, "products")
        }
        Databases::Service => Ok(kit::config::load::<SeedSettings>()?),
    }
}

/// Runs the import with `bar` showing progress and the first rejected records printed to
/// stderr, then how many more were rejected.
async fn load(
    store: &dyn CatalogImport,
    records: impl Iterator<Item = Result<products::domain::NewProduct, seed::RecordError>>,
    bar: ProgressBar,
) -> anyhow::Result<SeedSummary> {
    let mut shown = 0;
    let on_progress = |progress: &Progress<'_>| {
        bar.set_position(progress.read);
        for rejected in progress.newly_rejected.iter().take(REJECTIONS_SHOWN - shown) {
            bar.suspend(|| errln!("{rejected}"));
            shown += 1;
        }
    };
    let summary = seed::run(store, records, seed::BATCH_SIZE, on_progress).await;
    bar.finish_and_clear();
    let summary = summary?;
    if let Some(unshown) = summary.rejected.len().checked_sub(REJECTIONS_SHOWN).filter(|n| *n > 0) {
        errln!("… and {unshown} more rejected records, not shown (is --format right for this file?)");
    }
    Ok(summary)
}

/// A bar with ETA when the total is known, else a spinner with the count; drawn on stderr
/// only when it is a terminal.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{spinner} [{elapsed}] {wide_bar} {human_pos}/{human_len} products, {rate}, ETA {eta}",
        ),
        None => (ProgressBar::new_spinner(), "{spinner} [{elapsed}] {human_pos} records read, {rate}"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.with_key("rate", whole_per_second));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `12345/s` (indicatif's own `per_sec` shows four decimals).
fn whole_per_second(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.0}/s", state.per_sec());
}

/// `imported 194 products (194 new, 0 updated, 0 rejected) in 0.4 s (485/s)`.
pub fn summary_line(summary: &SeedSummary) -> String {
    let seconds = summary.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { (summary.imported() as f64 / seconds).round() as u64 } else { 0 };
    // Tenths, or hundredths for a short import rather than "0.0 s".
    let decimals = if seconds < 0.1 { 2 } else { 1 };
    format!(
        "imported {} products ({} new, {} updated, {} rejected) in {seconds:.decimals$} s ({rate}/s)",
        summary.imported(),
        summary.inserted,
        summary.updated,
        summary.rejected.len(),
    )
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        seed: SeedArgs,
    }

    #[test]
    fn the_arguments_are_checked() {
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["seed"]).is_err(), "a source is required");
        assert!(Cli::try_parse_from(["seed", "--generate", "5", "--file", "x.json"]).is_err());
        assert!(Cli::try_parse_from(["seed", "--file", "x.json", "--seed", "3"]).is_err());
        assert!(Cli::try_parse_from(["seed", "--generate", "5", "--format", "bestbuy"]).is_err());
        let cli = Cli::try_parse_from(["seed", "--file", "x.json", "--format", "dummyjson"]).unwrap();
        assert_eq!(cli.seed.format.map(Format::from), Some(Format::DummyJson));
    }

    #[test]
    fn the_summary_reads_as_the_issue_says() {
        let summary = SeedSummary {
            read: 195,
            inserted: 194,
            updated: 0,
            rejected: vec![seed::RecordError { record: 17, reason: "price: is required".into() }],
            elapsed: Duration::from_millis(400),
        };
        assert_eq!(
            summary_line(&summary),
            "imported 194 products (194 new, 0 updated, 1 rejected) in 0.4 s (485/s)"
        );
        let quick = SeedSummary { elapsed: Duration::from_millis(48), ..summary };
        assert!(summary_line(&quick).ends_with("in 0.05 s (4042/s)"), "{}", summary_line(&quick));
    }
}
