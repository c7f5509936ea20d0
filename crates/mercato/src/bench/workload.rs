//! The scenarios: what is fetched from the shop once at setup (categories, products, words,
//! buyers' tokens) and how each request of a run is drawn from it.

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::{Client, Method};
use serde::Deserialize;
use serde_json::{Value, json};

use super::record::Endpoint;

/// A shopper's journey: of every 100 requests, 60 list pages, 20 searches, 15 product details
/// and 5 orders.
pub const MIXED_WEIGHTS: [(Endpoint, u32); 4] =
    [(Endpoint::Browse, 60), (Endpoint::Search, 20), (Endpoint::Product, 15), (Endpoint::Checkout, 5)];
/// The ceiling measures the gateway's own answer and a service's, half each.
const CEILING_WEIGHTS: [(Endpoint, u32); 2] = [(Endpoint::GatewayHealth, 1), (Endpoint::ServiceHealth, 1)];
/// Products sampled at setup: ids for details and orders, words for searches.
const SAMPLE_PAGES: u64 = 10;
const SAMPLE_PAGE_SIZE: u64 = 100;
/// Products per list page, the API's default.
const BROWSE_PAGE_SIZE: u64 = 20;
/// The proxy hop measured with the same trivial request through the gateway and directly.
const PROXY_WEIGHTS: [(Endpoint, u32); 2] = [(Endpoint::ProxiedRefusal, 1), (Endpoint::DirectRefusal, 1)];
/// The storefront's pages: of every 10, 2 home pages, 4 category pages, 4 product pages.
const STOREFRONT_WEIGHTS: [(Endpoint, u32); 3] =
    [(Endpoint::PageHome, 2), (Endpoint::PageCategory, 4), (Endpoint::PageProduct, 4)];
/// A product id that is not a UUID: the products service refuses it before any I/O.
const MALFORMED_PRODUCT_PATH: &str = "/api/v1/products/not-a-product-id";
/// The service whose `/healthz` the ceiling (and the proxy scenario) calls directly.
const CEILING_SERVICE: &str = "products";
/// Buyers registered at once (each registration hashes a password, which is expensive).
const REGISTRATIONS_AT_ONCE: usize = 4;

/// What some scenarios call besides the gateway's public API: internal addresses, which the
/// gateway shows only to admins.
#[derive(Debug, Clone, Default)]
pub struct DirectTargets {
    /// The gateway's operations listener (`http.operations_listen`), for the ceiling.
    pub operations: Option<String>,
    /// The products service's base URL, for the ceiling and proxy scenarios.
    pub service: Option<String>,
}

/// What load to put on the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Product list pages of a random category, at a random page.
    Browse,
    /// The first list page of a random category: what a shopper sees on following a category
    /// link, and the page a shop serves most.
    List,
    /// Full-text searches for words of the catalog's product names.
    Search,
    /// Product details by random id.
    Product,
    /// Pre-registered buyers ordering one unit of a random in-stock product.
    Checkout,
    /// 60% browse, 20% search, 15% product, 5% checkout.
    Mixed,
    /// The gateway's /healthz, then the products service's /healthz directly, half the
    /// duration each.
    Ceiling,
    /// The cost of the gateway's proxy hop: the products service's smallest answer (400 for a
    /// malformed id, no database) through the gateway, then directly, half the duration each.
    Proxy,
    /// The storefront's HTML pages through the gateway, as a shopper's browser asks for them:
    /// 20% home, 40% category pages, 40% product pages.
    Storefront,
}

impl Scenario {
    fn weights(self) -> &'static [(Endpoint, u32)] {
        match self {
            Scenario::Browse => &[(Endpoint::Browse, 1)],
            Scenario::List => &[(Endpoint::FirstPage, 1)],
            Scenario::Search => &[(Endpoint::Search, 1)],
            Scenario::Product => &[(Endpoint::Product, 1)],
            Scenario::Checkout => &[(Endpoint::Checkout, 1)],
            Scenario::Mixed => &MIXED_WEIGHTS,
            Scenario::Ceiling => &CEILING_WEIGHTS,
            Scenario::Proxy => &PROXY_WEIGHTS,
            Scenario::Storefront => &STOREFRONT_WEIGHTS,
        }
    }

    /// Whether each endpoint runs alone for its share of the duration (a ceiling, or a
    /// comparison of two ways to the same answer) rather than drawn from a mix.
    pub fn runs_endpoints_in_turn(self) -> bool {
        matches!(self, Scenario::Ceiling | Scenario::Proxy)
    }

    fn uses(self, endpoint: Endpoint) -> bool {
        self.weights().iter().any(|(e, _)| *e == endpoint)
    }
}

/// Draws an endpoint with probability proportional to its weight.
pub fn pick_weighted(weights: &[(Endpoint, u32)], rng: &mut fastrand::Rng) -> Endpoint {
    let total: u32 = weights.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.u32(0..total.max(1));
    for (endpoint, weight) in weights {
        if roll < *weight {
            return *endpoint;
        }
        roll -= weight;
    }
    weights[weights.len() - 1].0
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct PlannedRequest {
    pub endpoint: Endpoint,
    pub method: Method,
    pub url: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub bearer: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Category {
    slug: String,
    product_count: u64,
}

#[derive(Debug, Deserialize)]
struct ProductPage {
    items: Vec<ProductSummary>,
    total_pages: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ProductSummary {
    id: String,
    name: String,
    stock: i64,
}

#[derive(Debug, Deserialize)]
struct Tokens {
    access_token: String,
}

/// Everything a scenario draws its requests from, fetched once before the load starts.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    target: String,
    weights: Vec<(Endpoint, u32)>,
    categories: Vec<Category>,
    product_ids: Vec<String>,
    in_stock_ids: Vec<String>,
    words: Vec<String>,
    buyer_tokens: Vec<String>,
    gateway_health_url: String,
    service_health_url: String,
    service_url: String,
}

impl Workload {
    /// Fetches what `scenario` needs from the shop at `target`, registering `users` buyers
    /// when it places orders.
    pub async fn prepare(
        client: &Client,
        target: &str,
        direct: &DirectTargets,
        scenario: Scenario,
        users: usize,
    ) -> anyhow::Result<Self> {
        let target = target.trim_end_matches('/').to_owned();
        let mut workload =
            Workload { target: target.clone(), weights: scenario.weights().to_vec(), ..Workload::default() };
        if scenario.uses(Endpoint::Browse)
            || scenario.uses(Endpoint::FirstPage)
            || scenario.uses(Endpoint::PageCategory)
        {
            workload.categories = fetch_categories(client, &target).await?;
        }
        if [Endpoint::Search, Endpoint::Product, Endpoint::Checkout, Endpoint::PageProduct]
            .iter()
            .any(|e| scenario.uses(*e))
        {
            let products = sample_products(client, &target).await?;
            workload.words = words_of(products.iter().map(|p| p.name.as_str()));
            workload.in_stock_ids = products.iter().filter(|p| p.stock > 0).map(|p| p.id.clone()).collect();
            workload.product_ids = products.into_iter().map(|p| p.id).collect();
            if workload.product_ids.is_empty() {
                bail!("the catalog at {target} is empty: seed it first (mercato seed --generate N)");
            }
        }
        if scenario.uses(Endpoint::Checkout) {
            if workload.in_stock_ids.is_empty() {
                bail!("no product in stock among those sampled: checkout has nothing to order");
            }
            workload.buyer_tokens = register_buyers(client, &target, users.max(1)).await?;
        }
        if scenario.uses(Endpoint::GatewayHealth) {
            let operations = direct.operations.as_deref().with_context(|| {
                "the ceiling calls the gateway's /healthz on its operations listener: pass --operations URL"
            })?;
            workload.gateway_health_url = format!("{}/healthz", operations.trim_end_matches('/'));
        }
        if scenario.uses(Endpoint::ServiceHealth) || scenario.uses(Endpoint::DirectRefusal) {
            let service = direct.service.as_deref().with_context(|| {
                format!("this scenario calls the {CEILING_SERVICE} service directly: pass --service URL (its base URL)")
            })?;
            workload.service_url = service.trim_end_matches('/').to_owned();
            workload.service_health_url = format!("{}/healthz", workload.service_url);
        }
        Ok(workload)
    }

    /// The same workload drawing only `endpoint`'s requests.
    pub fn only(&self, endpoint: Endpoint) -> Self {
        Self { weights: vec![(endpoint, 1)], ..self.clone() }
    }

    /// The endpoints this workload draws from.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.weights.iter().map(|(endpoint, _)| *endpoint).collect()
    }

    /// Draws the next request of the scenario.
    pub fn next_request(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        match pick_weighted(&self.weights, rng) {
            Endpoint::Browse => self.browse(rng),
            Endpoint::FirstPage => self.first_page(rng),
            Endpoint::Search => self.search(rng),
            Endpoint::Product => self.product(rng),
            Endpoint::Checkout => self.checkout(rng),
            Endpoint::GatewayHealth => self.get(Endpoint::GatewayHealth, self.gateway_health_url.clone()),
            Endpoint::ServiceHealth => self.get(Endpoint::ServiceHealth, self.service_health_url.clone()),
            Endpoint::ProxiedRefusal => {
                self.get(Endpoint::ProxiedRefusal, format!("{}{MALFORMED_PRODUCT_PATH}", self.target))
            }
            Endpoint::DirectRefusal => {
                self.get(Endpoint::DirectRefusal, format!("{}{MALFORMED_PRODUCT_PATH}", self.service_url))
            }
            Endpoint::PageHome => self.get(Endpoint::PageHome, format!("{}/", self.target)),
            Endpoint::PageCategory => {
                let slug = pick(&self.categories, rng).map(|c| c.slug.as_str()).unwrap_or_default();
                self.get(Endpoint::PageCategory, format!("{}/c/{slug}", self.target))
            }
            Endpoint::PageProduct => {
                let id = pick(&self.product_ids, rng).map(String::as_str).unwrap_or_default();
                self.get(Endpoint::PageProduct, format!("{}/p/{id}", self.target))
            }
        }
    }

    fn get(&self, endpoint: Endpoint, url: String) -> PlannedRequest {
        PlannedRequest { endpoint, method: Method::GET, url, query: Vec::new(), body: None, bearer: None }
    }

    fn browse(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        let mut request = self.get(Endpoint::Browse, format!("{}/api/v1/products", self.target));
        let mut pages = 1;
        if let Some(category) = pick(&self.categories, rng) {
            pages = category.product_count.div_ceil(BROWSE_PAGE_SIZE).max(1);
            request.query.push(("category", category.slug.clone()));
        }
        request.query.push(("page", rng.u64(1..=pages).to_string()));
        request.query.push(("limit", BROWSE_PAGE_SIZE.to_string()));
        request
    }

    fn first_page(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        let mut request = self.get(Endpoint::FirstPage, format!("{}/api/v1/products", self.target));
        if let Some(category) = pick(&self.categories, rng) {
            request.query.push(("category", category.slug.clone()));
        }
        request.query.push(("limit", BROWSE_PAGE_SIZE.to_string()));
        request
    }

    fn search(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        let mut request = self.get(Endpoint::Search, format!("{}/api/v1/products", self.target));
        let word = pick(&self.words, rng).cloned().unwrap_or_default();
        request.query.push(("q", word));
        request.query.push(("limit", BROWSE_PAGE_SIZE.to_string()));
        request
    }

    fn product(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        let id = pick(&self.product_ids, rng).map(String::as_str).unwrap_or_default();
        self.get(Endpoint::Product, format!("{}/api/v1/products/{id}", self.target))
    }

    fn checkout(&self, rng: &mut fastrand::Rng) -> PlannedRequest {
        let product_id = pick(&self.in_stock_ids, rng).cloned().unwrap_or_default();
        let body = json!({
            "items": [{ "product_id": product_id, "quantity": 1 }],
            "shipping_address": {
                "line1": "1 Benchmark Street", "city": "Springfield", "postal_code": "12345", "country": "US"
            }
        });
        PlannedRequest {
            endpoint: Endpoint::Checkout,
            method: Method::POST,
            url: format!("{}/api/v1/orders", self.target),
            query: Vec::new(),
            body: Some(body),
            bearer: pick(&self.buyer_tokens, rng).cloned(),
        }
    }
}

fn pick<'a, T>(items: &'a [T], rng: &mut fastrand::Rng) -> Option<&'a T> {
    if items.is_empty() { None } else { items.get(rng.usize(0..items.len())) }
}

/// Distinct lower-case words of three letters or more, in first-seen order.
fn words_of<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut words = Vec::new();
    for word in names.flat_map(|name| name.split(|c: char| !c.is_alphanumeric())) {
        let word = word.to_lowercase();
        if word.chars().count() >= 3 && seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &Client, url: &str) -> anyhow::Result<T> {
    let response = client.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    response.json().await.with_context(|| format!("GET {url}: unexpected body"))
}

async fn fetch_categories(client: &Client, target: &str) -> anyhow::Result<Vec<Category>> {
    let categories: Vec<Category> = get_json(client, &format!("{target}/api/v1/categories")).await?;
    Ok(categories.into_iter().filter(|c| c.product_count > 0).collect())
}

/// Up to `SAMPLE_PAGES` pages of 100 products spread over the whole catalog.
async fn sample_products(client: &Client, target: &str) -> anyhow::Result<Vec<ProductSummary>> {
    let page_url = |page: u64| format!("{target}/api/v1/products?limit={SAMPLE_PAGE_SIZE}&page={page}");
    let first: ProductPage = get_json(client, &page_url(1)).await?;
    let total_pages = first.total_pages.unwrap_or(1).max(1);
    let step = (total_pages / SAMPLE_PAGES).max(1);
    let mut products = first.items;
    for page in (1..SAMPLE_PAGES).map(|i| 1 + i * step).filter(|page| *page <= total_pages) {
        let more: ProductPage = get_json(client, &page_url(page)).await?;
        products.extend(more.items);
    }
    Ok(products)
}

/// Registers `count` buyers with fresh emails and returns their access tokens.
async fn register_buyers(client: &Client, target: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let run = fastrand::u64(..);
    let url = format!("{target}/api/v1/auth/register");
    futures_util::stream::iter(0..count)
        .map(|i| {
            let body = json!({
                "name": format!("Bench Buyer {i}"),
                "email": format!("bench-{run:x}-{i}@example.com"),
                "password": "bench-password-1",
            });
            let request = client.post(&url).json(&body);
            async move {
                let response = request.send().await.context("registering a buyer")?;
                let status = response.status();
                if !status.is_success() {
                    bail!("registering a buyer answered {status}");
                }
                let tokens: Tokens = response.json().await.context("registering a buyer: unexpected body")?;
                Ok(tokens.access_token)
            }
        })
        .buffer_unordered(REGISTRATIONS_AT_ONCE)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn mixed_draws_follow_the_60_20_15_5_weights() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts: BTreeMap<Endpoint, u32> = BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(pick_weighted(&MIXED_WEIGHTS, &mut rng)).or_default() += 1;
        }
        for (endpoint, weight) in MIXED_WEIGHTS {
            let share = f64::from(counts[&endpoint]) / 1000.0;
            assert!((share - f64::from(weight)).abs() < 1.0, "{endpoint:?}: {share}% for weight {weight}");
        }
    }

    #[test]
    fn list_draws_the_first_page_of_a_category() {
        let workload = Workload {
            target: "http://shop".into(),
            weights: Scenario::List.weights().to_vec(),
            categories: vec![Category { slug: "books".into(), product_count: 950 }],
            ..Workload::default()
        };
        let request = workload.next_request(&mut fastrand::Rng::with_seed(3));
        assert_eq!(request.endpoint, Endpoint::FirstPage);
        assert_eq!(request.url, "http://shop/api/v1/products");
        assert_eq!(request.query, [("category", "books".to_owned()), ("limit", "20".to_owned())]);
    }

    #[test]
    fn the_same_seed_draws_the_same_requests() {
        let workload = Workload {
            target: "http://shop".into(),
            weights: MIXED_WEIGHTS.to_vec(),
            categories: vec![Category { slug: "books".into(), product_count: 95 }],
            product_ids: vec!["a".into(), "b".into()],
            in_stock_ids: vec!["a".into()],
            words: vec!["steel".into(), "lamp".into()],
            buyer_tokens: vec!["t".into()],
            gateway_health_url: String::new(),
            service_health_url: String::new(),
            service_url: String::new(),
        };
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..50).map(|_| workload.next_request(&mut rng)).map(|r| (r.url, r.query)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn browse_stays_within_the_category_pages() {
        let workload = Workload {
            target: "http://shop".into(),
            weights: vec![(Endpoint::Browse, 1)],
            categories: vec![Category { slug: "books".into(), product_count: 95 }],
            ..Workload::default()
        };
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..200 {
            let request = workload.next_request(&mut rng);
            let page: u64 = request.query.iter().find(|(k, _)| *k == "page").unwrap().1.parse().unwrap();
            assert!((1..=5).contains(&page), "page {page} of a 95-product category");
            assert!(request.query.contains(&("category", "books".to_owned())));
        }
    }

    #[test]
    fn search_words_are_distinct_lowercase_and_not_tiny() {
        let words = words_of(["Steel Lamp, 2x", "steel MUG"].into_iter());
        assert_eq!(words, ["steel", "lamp", "mug"]);
    }
}
