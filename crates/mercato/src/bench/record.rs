//! What a run measured: per endpoint, a latency histogram and its answers by kind, mergeable
//! across workers.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency a histogram tracks exactly (two minutes, in microseconds); longer ones
/// are recorded as this value.
const HIGHEST_TRACKABLE_MICROS: u64 = 120_000_000;
/// Three significant digits: 0.1% precision at every magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

/// What the load tool asks the shop for; each has its own histogram and table row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// A product list page of a category.
    Browse,
    /// The first list page of a category (what a category link shows).
    FirstPage,
    /// A full-text search for a word of the catalog.
    Search,
    /// One product's detail.
    Product,
    /// An order of one unit of an in-stock product.
    Checkout,
    /// The gateway's own `/healthz`.
    GatewayHealth,
    /// A service's `/healthz`, straight to the service.
    ServiceHealth,
    /// The products service's smallest answer (a 400 for a malformed product id: routing,
    /// extraction and a problem body, no database), through the gateway.
    ProxiedRefusal,
    /// The same request straight to the products service.
    DirectRefusal,
    /// The storefront's home page (HTML).
    PageHome,
    /// A storefront category page (HTML): `/c/{category}`.
    PageCategory,
    /// A storefront product page (HTML): `/p/{id}`.
    PageProduct,
}

impl Endpoint {
    /// The name shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Browse => "browse",
            Endpoint::FirstPage => "first page",
            Endpoint::Search => "search",
            Endpoint::Product => "product",
            Endpoint::Checkout => "checkout",
            Endpoint::GatewayHealth => "gateway /healthz",
            Endpoint::ServiceHealth => "service /healthz",
            Endpoint::ProxiedRefusal => "400 via gateway",
            Endpoint::DirectRefusal => "400 direct",
            Endpoint::PageHome => "home page",
            Endpoint::PageCategory => "category page",
            Endpoint::PageProduct => "product page",
        }
    }

    /// The status that answers this endpoint correctly when it is not a 2xx.
    fn expected_refusal(self) -> Option<u16> {
        match self {
            Endpoint::ProxiedRefusal | Endpoint::DirectRefusal => Some(400),
            _ => None,
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Success,
    /// A checkout refused with 409: the shop answered correctly that stock ran out.
    OutOfStock,
    /// Any other status.
    Status(u16),
    /// No answer: connection refused or reset, timeout.
    Transport,
}

impl Outcome {
    /// Classifies an HTTP status for an endpoint: 409 is a correct answer for checkout only,
    /// 400 for the proxy scenario's malformed id only.
    pub fn of_status(endpoint: Endpoint, status: u16) -> Self {
        match status {
            200..=299 => Outcome::Success,
            refusal if endpoint.expected_refusal() == Some(refusal) => Outcome::Success,
            409 if endpoint == Endpoint::Checkout => Outcome::OutOfStock,
            other => Outcome::Status(other),
        }
    }

    /// Whether the shop failed this request (a wrong status or no answer).
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Status(_) | Outcome::Transport)
    }
}

/// One endpoint's measurements.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Latency of every answered request, in microseconds.
    pub latency: Histogram<u64>,
    pub successes: u64,
    pub out_of_stock: u64,
    /// Failed requests by status code, or `transport`.
    pub errors: BTreeMap<String, u64>,
}

impl EndpointStats {
    fn new() -> Self {
        let latency = Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_MICROS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self { latency, successes: 0, out_of_stock: 0, errors: BTreeMap::new() }
    }

    /// Every request sent, answered or not.
    pub fn requests(&self) -> u64 {
        self.successes + self.out_of_stock + self.error_count()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn absorb(&mut self, other: &EndpointStats) -> Result<(), hdrhistogram::AdditionError> {
        self.latency.add(&other.latency)?;
        self.successes += other.successes;
        self.out_of_stock += other.out_of_stock;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        Ok(())
    }
}

/// The measurements of one worker, or of a whole run once workers are merged.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    stats: BTreeMap<Endpoint, EndpointStats>,
}

impl Recorder {
    /// Counts one request; its latency goes into the histogram when the shop answered.
    pub fn record(&mut self, endpoint: Endpoint, outcome: &Outcome, latency: Duration) {
        let stats = self.stats.entry(endpoint).or_insert_with(EndpointStats::new);
        match outcome {
            Outcome::Success => stats.successes += 1,
            Outcome::OutOfStock => stats.out_of_stock += 1,
            Outcome::Status(code) => *stats.errors.entry(code.to_string()).or_default() += 1,
            Outcome::Transport => *stats.errors.entry("transport".to_owned()).or_default() += 1,
        }
        if *outcome != Outcome::Transport {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
            stats.latency.saturating_record(micros);
        }
    }

    /// Adds another worker's measurements to these.
    pub fn merge(&mut self, other: Recorder) -> Result<(), hdrhistogram::AdditionError> {
        for (endpoint, theirs) in &other.stats {
            self.stats.entry(*endpoint).or_insert_with(EndpointStats::new).absorb(theirs)?;
        }
        Ok(())
    }

    /// Every endpoint's measurements together.
    pub fn combined(&self) -> Result<EndpointStats, hdrhistogram::AdditionError> {
        let mut all = EndpointStats::new();
        for stats in self.stats.values() {
            all.absorb(stats)?;
        }
        Ok(all)
    }

    /// Each endpoint that got requests, in table order.
    pub fn endpoints(&self) -> impl Iterator<Item = (Endpoint, &EndpointStats)> {
        self.stats.iter().map(|(endpoint, stats)| (*endpoint, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_400_is_the_right_answer_only_for_the_proxy_scenarios_malformed_id() {
        assert_eq!(Outcome::of_status(Endpoint::ProxiedRefusal, 400), Outcome::Success);
        assert_eq!(Outcome::of_status(Endpoint::DirectRefusal, 400), Outcome::Success);
        assert_eq!(Outcome::of_status(Endpoint::DirectRefusal, 404), Outcome::Status(404));
        assert_eq!(Outcome::of_status(Endpoint::Product, 400), Outcome::Status(400));
        assert_eq!(Outcome::of_status(Endpoint::Checkout, 409), Outcome::OutOfStock);
        assert_eq!(Outcome::of_status(Endpoint::Product, 409), Outcome::Status(409));
    }

    #[test]
    fn merging_workers_adds_counts_and_combines_histograms() {
        let mut first = Recorder::default();
        let mut second = Recorder::default();
        for ms in 1..=50 {
            first.record(Endpoint::Browse, &Outcome::Success, millis(ms));
        }
        for ms in 51..=100 {
            second.record(Endpoint::Browse, &Outcome::Success, millis(ms));
        }
        second.record(Endpoint::Browse, &Outcome::Status(500), millis(7));
        second.record(Endpoint::Search, &Outcome::Transport, millis(9));

        first.merge(second).unwrap();

        let (_, browse) = first.endpoints().find(|(e, _)| *e == Endpoint::Browse).unwrap();
        assert_eq!(browse.requests(), 101);
        assert_eq!(browse.latency.len(), 101);
        assert_eq!(browse.errors.get("500"), Some(&1));
        // The median of 1..=100 ms (plus one 7 ms) is about 50 ms, which neither worker alone had.
        let median_ms = browse.latency.value_at_quantile(0.5) as f64 / 1000.0;
        assert!((49.0..=51.0).contains(&median_ms), "median {median_ms} ms");
        let (_, search) = first.endpoints().find(|(e, _)| *e == Endpoint::Search).unwrap();
        assert_eq!(search.errors.get("transport"), Some(&1));
        assert_eq!(search.latency.len(), 0, "no answer, no latency");
    }

    #[test]
    fn a_409_is_out_of_stock_for_checkout_and_an_error_elsewhere() {
        assert_eq!(Outcome::of_status(Endpoint::Checkout, 409), Outcome::OutOfStock);
        assert!(!Outcome::OutOfStock.is_error());
        assert_eq!(Outcome::of_status(Endpoint::Browse, 409), Outcome::Status(409));
        assert!(Outcome::of_status(Endpoint::Browse, 409).is_error());
        assert_eq!(Outcome::of_status(Endpoint::Checkout, 201), Outcome::Success);
    }
}
