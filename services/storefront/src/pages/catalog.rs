//! Browsing: the home page, a category's listing with filters and sorts, search with paging,
//! and a product's page with its add-to-cart form. Anyone may browse.

use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::{Category, Page, Product, ProductQuery};
use crate::views::{self, Chrome, html_page, layout, money, product_image};
use crate::web::{AppState, PageError, PageResult, Visit};

/// `GET /`: categories and a few of the newest products.
pub async fn home(State(app): State<AppState>, visit: Visit) -> PageResult {
    let query = ProductQuery {
        in_stock: Some(true),
        sort: Some("newest".into()),
        page: 1,
        limit: app.featured_products,
        ..ProductQuery::default()
    };
    let (categories, featured) = tokio::join!(app.gateway.categories(), app.gateway.products(&query));
    let (categories, featured) = (categories?, featured?);
    let chrome = visit.chrome(&app);
    let body = html! {
        h1 { "Welcome to mercato" }
        section aria-labelledby="categories-heading" {
            h2 id="categories-heading" { "Shop by category" }
            (category_list(&categories, None))
        }
        section aria-labelledby="featured-heading" {
            h2 id="featured-heading" { "New in" }
            (product_grid(&featured.items))
        }
    };
    Ok(html_page(layout(&chrome, "Home", body)))
}

/// A listing's filters, sort and page as the query string carries them (prices in major units,
/// as a person types them).
#[derive(Debug, Default, Deserialize)]
pub struct ListingParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    min_price: Option<String>,
    #[serde(default)]
    max_price: Option<String>,
    #[serde(default)]
    in_stock: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    page: Option<u32>,
}

const SORTS: [(&str, &str); 6] = [
    ("relevance", "Best match"),
    ("newest", "Newest"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("rating", "Rating"),
    ("name", "Name"),
];

impl ListingParams {
    fn non_empty(value: &Option<String>) -> Option<String> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// The API query, and a message for each filter that could not be read (then left out).
    fn to_query(&self, category: Option<&str>, limit: u32) -> (ProductQuery, Vec<String>) {
        let mut problems = Vec::new();
        let mut price = |label: &str, value: &Option<String>| {
            let text = Self::non_empty(value)?;
            match kit::money::Money::minor_units_from_decimal(&text) {
                Some(minor) if minor >= 0 => Some(minor),
                _ => {
                    problems.push(format!("{label} must be an amount such as 19.99; it was left out."));
                    None
                }
            }
        };
        let min_price = price("The lowest price", &self.min_price);
        let max_price = price("The highest price", &self.max_price);
        let q = Self::non_empty(&self.q);
        let sort = Self::non_empty(&self.sort)
            .filter(|s| SORTS.iter().any(|(key, _)| key == s) && (s != "relevance" || q.is_some()));
        let query = ProductQuery {
            q,
            category: category.map(str::to_owned),
            brand: Self::non_empty(&self.brand),
            min_price,
            max_price,
            in_stock: self.in_stock.as_deref().map(|v| v == "1" || v == "true" || v == "on").filter(|v| *v),
            sort,
            page: self.page.unwrap_or(1).clamp(1, 10_000),
            limit,
        };
        (query, problems)
    }
}

/// `GET /c/{category}`: the category's products, filtered and sorted.
pub async fn category(
    State(app): State<AppState>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(params): Query<ListingParams>,
) -> PageResult {
    let (query, problems) = params.to_query(Some(&slug), app.page_size);
    let (categories, products) = tokio::join!(app.gateway.categories(), app.gateway.products(&query));
    let categories = categories?;
    let Some(current) = categories.iter().find(|c| c.slug == slug) else {
        return Err(PageError::NotFound);
    };
    let products = products?;
    let chrome = visit.chrome(&app);
    let action = format!("/c/{slug}");
    let body = html! {
        nav aria-label="Categories" class="categories" { (category_list(&categories, Some(&slug))) }
        h1 { (current.name) }
        (filters(&action, &query, false))
        @for problem in &problems { p class="message error" role="alert" { (problem) } }
        (results(&products, &query, &action))
    };
    Ok(html_page(layout(&chrome, &current.name, body)))
}

/// `GET /search?q=`: ranked results with paging.
pub async fn search(
    State(app): State<AppState>,
    visit: Visit,
    Query(params): Query<ListingParams>,
) -> PageResult {
    let (query, problems) = params.to_query(None, app.page_size);
    let chrome = visit.chrome(&app);
    let Some(q) = query.q.clone() else {
        let body = html! {
            h1 { "Search" }
            p { "Type what you are looking for in the search box above." }
        };
        return Ok(html_page(layout(&chrome, "Search", body)));
    };
    let products = app.gateway.products(&query).await?;
    let title = format!("Results for “{q}”");
    let body = html! {
        h1 { (title) }
        (filters("/search", &query, true))
        @for problem in &problems { p class="message error" role="alert" { (problem) } }
        (results(&products, &query, "/search"))
    };
    Ok(html_page(layout(&chrome, &title, body)))
}

/// `GET /p/{id}`: the product, its stock and the add-to-cart form.
pub async fn product(State(app): State<AppState>, visit: Visit, Path(id): Path<String>) -> PageResult {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let product = app.gateway.product(id).await?;
    let chrome = visit.chrome(&app);
    let body = product_page(&chrome, &product);
    Ok(html_page(layout(&chrome, &product.name, body)))
}

fn product_page(chrome: &Chrome, product: &Product) -> Markup {
    let in_stock = product.stock > 0;
    html! {
        article class="product" {
            div class="gallery" {
                (product_image(product.images.first().map(String::as_str), &product.name, "product-image"))
                @for (i, url) in product.images.iter().enumerate().skip(1) {
                    img class="thumb" src=(url) srcset=[views::srcset(url)] sizes="120px" alt=(format!("{} — picture {}", product.name, i + 1)) loading="lazy";
                }
            }
            div class="details" {
                nav aria-label="Breadcrumb" { a href=(format!("/c/{}", views::url_encode(&product.category))) { (product.category) } }
                h1 { (product.name) }
                @if let Some(rating) = product.rating.filter(|r| *r > 0.0) { p class="rating" { "Rated " (format!("{rating:.1}")) " out of 5" } }
                @if let Some(brand) = &product.brand { p class="brand-name" { (brand) } }
                p class="price" { (money(&product.price)) }
                p class={ "stock " @if in_stock { "in" } @else { "out" } } {
                    @if !in_stock { "Out of stock" }
                    @else if product.stock < 10 { "In stock — only " (product.stock) " left" }
                    @else { "In stock" }
                }
                @if let Some(short) = &product.short_description { p class="lead" { (short) } }
                @if in_stock {
                    form method="post" action="/cart/items" class="add-to-cart" {
                        (views::csrf(chrome))
                        input type="hidden" name="product_id" value=(product.id);
                        div class="field" {
                            label for="quantity" { "Quantity" }
                            input id="quantity" name="quantity" type="number" min="1" max=(product.stock.min(99)) value="1" required;
                        }
                        button type="submit" data-once { "Add to cart" }
                    }
                }
                @if let Some(description) = &product.description {
                    h2 { "Description" }
                    p class="description" { (description) }
                }
                @if !product.attributes.is_empty() {
                    h2 { "Details" }
                    dl class="attributes" {
                        dt { "SKU" } dd { (product.sku) }
                        @for (name, value) in &product.attributes {
                            dt { (name) }
                            dd { (attribute_text(value)) }
                        }
                    }
                }
            }
        }
    }
}

fn attribute_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(attribute_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn category_list(categories: &[Category], current: Option<&str>) -> Markup {
    html! {
        ul class="category-list" {
            @for category in categories {
                li {
                    a href=(format!("/c/{}", views::url_encode(&category.slug)))
                        aria-current=[(current == Some(category.slug.as_str())).then_some("page")] {
                        (category.name) " " span class="count" { "(" (category.product_count) ")" }
                    }
                }
            }
        }
    }
}

/// Filters and sort as a GET form (works without JavaScript).
fn filters(action: &str, query: &ProductQuery, searching: bool) -> Markup {
    let price = |minor: Option<i64>| minor.map(|m| format!("{}.{:02}", m / 100, m % 100)).unwrap_or_default();
    let sort = query.sort.clone().unwrap_or_else(|| if searching { "relevance" } else { "newest" }.into());
    html! {
        form class="filters" method="get" action=(action) aria-label="Filter and sort" {
            @if let Some(q) = &query.q { input type="hidden" name="q" value=(q); }
            div class="field" {
                label for="brand" { "Brand" }
                input id="brand" name="brand" type="text" value=(query.brand.clone().unwrap_or_default());
            }
            div class="field" {
                label for="min_price" { "Lowest price" }
                input id="min_price" name="min_price" type="text" inputmode="decimal" value=(price(query.min_price));
            }
            div class="field" {
                label for="max_price" { "Highest price" }
                input id="max_price" name="max_price" type="text" inputmode="decimal" value=(price(query.max_price));
            }
            div class="field checkbox" {
                input id="in_stock" name="in_stock" type="checkbox" value="1" checked[query.in_stock == Some(true)];
                label for="in_stock" { "In stock only" }
            }
            div class="field" {
                label for="sort" { "Sort by" }
                select id="sort" name="sort" {
                    @for (key, label) in SORTS {
                        @if key != "relevance" || searching {
                            option value=(key) selected[sort == key] { (label) }
                        }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
    }
}

fn results(products: &Page<Product>, query: &ProductQuery, action: &str) -> Markup {
    let page = i64::from(query.page);
    let link = |page: i64| {
        let mut params = query.clone();
        params.category = None;
        params.limit = 0;
        params.page = page as u32;
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(q) = &params.q {
            pairs.push(("q", q.clone()));
        }
        if let Some(b) = &params.brand {
            pairs.push(("brand", b.clone()));
        }
        if let Some(m) = params.min_price {
            pairs.push(("min_price", format!("{}.{:02}", m / 100, m % 100)));
        }
        if let Some(m) = params.max_price {
            pairs.push(("max_price", format!("{}.{:02}", m / 100, m % 100)));
        }
        if params.in_stock == Some(true) {
            pairs.push(("in_stock", "1".into()));
        }
        if let Some(s) = &params.sort {
            pairs.push(("sort", s.clone()));
        }
        pairs.push(("page", page.to_string()));
        format!("{action}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    };
    html! {
        p class="result-count" role="status" { (products.total) " products" }
        @if products.items.is_empty() {
            p { "Nothing matches. Try fewer filters or other words." }
        } @else {
            (product_grid(&products.items))
        }
        @if products.total_pages > 1 {
            nav class="pager" aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (products.total_pages) }
                @if page < products.total_pages { a rel="next" href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}

fn product_grid(products: &[Product]) -> Markup {
    html! {
        ul class="product-grid" {
            @for product in products {
                li class="card" {
                    a href=(format!("/p/{}", product.id)) {
                        (product_image(product.images.first().map(String::as_str), &product.name, "card-image"))
                        span class="card-name" { (product.name) }
                    }
                    span class="card-price" { (money(&product.price)) }
                    @if product.stock <= 0 { span class="stock out" { "Out of stock" } }
                }
            }
        }
    }
}
