//! The public API as the storefront calls it: through the gateway, like any client, with the
//! shopper's bearer token. Answers are decoded into the few fields the pages show; API errors
//! become [`ApiFailure`]s the pages turn into messages.

use http::{HeaderName, HeaderValue, Method, StatusCode};
use kit::client::{ClientError, ServiceClient, ServiceRequest};
use kit::money::Money;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The gateway, as the storefront's only dependency.
#[derive(Clone)]
pub struct Gateway {
    client: ServiceClient,
}

/// Why an API call did not give what the page wanted.
#[derive(Debug, Clone)]
pub enum ApiFailure {
    /// The API answered with an error (a problem+json body, when it sent one).
    Answer { status: StatusCode, title: String, detail: String, fields: Vec<(String, String)> },
    /// The gateway could not be reached, timed out, or answered something unreadable.
    Unavailable(String),
}

impl ApiFailure {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::Answer { status, .. } => *status,
            ApiFailure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The message for a person: the problem's detail, else its title.
    pub fn message(&self) -> String {
        match self {
            ApiFailure::Answer { detail, title, .. } if detail.is_empty() => title.clone(),
            ApiFailure::Answer { detail, .. } => detail.clone(),
            ApiFailure::Unavailable(_) => {
                "The shop cannot answer right now. Please try again in a moment.".into()
            }
        }
    }

    /// The message the API gave for `field`, if any.
    pub fn field(&self, name: &str) -> Option<&str> {
        match self {
            ApiFailure::Answer { fields, .. } => {
                fields.iter().find(|(field, _)| field == name).map(|(_, message)| message.as_str())
            }
            ApiFailure::Unavailable(_) => None,
        }
    }

    /// Whether the API listed any field error (then the form shows them beside the fields).
    pub fn has_field_errors(&self) -> bool {
        matches!(self, ApiFailure::Answer { fields, .. } if !fields.is_empty())
    }
}

impl From<ClientError> for ApiFailure {
    fn from(err: ClientError) -> Self {
        match &err {
            ClientError::Status { status, .. } => {
                let problem = err.problem().unwrap_or_default();
                let text =
                    |key: &str| problem.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let fields = problem
                    .get("errors")
                    .and_then(|e| e.as_array())
                    .map(|errors| {
                        errors
                            .iter()
                            .filter_map(|e| {
                                Some((
                                    e.get("field")?.as_str()?.to_owned(),
                                    e.get("message")?.as_str()?.to_owned(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let title = match text("title") {
                    t if t.is_empty() => status.canonical_reason().unwrap_or("Error").to_owned(),
                    t => t,
                };
                ApiFailure::Answer { status: *status, title, detail: text("detail"), fields }
            }
            _ => {
                tracing::warn!(error = %err, "the gateway call failed");
                ApiFailure::Unavailable(err.to_string())
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiFailure>;

#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub product_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: uuid::Uuid,
    #[serde(default)]
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub short_description: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub brand: Option<String>,
    pub price: Money,
    #[serde(default)]
    pub stock: i64,
    #[serde(default)]
    pub rating: Option<f64>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub total_pages: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    #[serde(default)]
    pub user: Option<Me>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub id: uuid::Uuid,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub state: Option<String>,
    pub postal_code: String,
    pub country: String,
    #[serde(default)]
    pub is_default: bool,
}

/// A new address as the forms send it (empty optional lines left out).
#[derive(Debug, Clone, Serialize)]
pub struct NewAddress {
    pub line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub postal_code: String,
    pub country: String,
}

/// What an order of some lines would cost now (`POST /api/v1/orders/quote`).
#[derive(Debug, Clone, Deserialize)]
pub struct Quote {
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub subtotal: Money,
    #[serde(default)]
    pub item_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CartLine {
    pub product_id: uuid::Uuid,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
    #[serde(default = "yes")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: uuid::Uuid,
    pub status: String,
    #[serde(default)]
    pub items: Vec<OrderLine>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    #[serde(default)]
    pub shipping_address: serde_json::Value,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderLine {
    pub product_id: uuid::Uuid,
    #[serde(default)]
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

/// Filters and sorting of a product listing, as the API takes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProductQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_stock: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    pub page: u32,
    pub limit: u32,
}

impl Gateway {
    pub fn new(client: ServiceClient) -> Self {
        Self { client }
    }

    async fn call<T: DeserializeOwned>(&self, request: ServiceRequest) -> ApiResult<T> {
        Ok(self.client.send_json(request).await?)
    }

    async fn call_empty(&self, request: ServiceRequest) -> ApiResult<()> {
        let response = self.client.send(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::Status { service: "gateway".into(), status, body }.into())
    }

    fn get(&self, path: &str) -> ServiceRequest {
        self.client.request(Method::GET, path)
    }

    /// Whether the API answers (the categories, a cheap public read).
    pub async fn ready(&self) -> Result<(), String> {
        self.call_empty(self.get("/api/v1/categories")).await.map_err(|f| match f {
            ApiFailure::Unavailable(why) => why,
            answer => format!("answered {}", answer.status()),
        })
    }

    pub async fn categories(&self) -> ApiResult<Vec<Category>> {
        self.call(self.get("/api/v1/categories")).await
    }

    pub async fn products(&self, query: &ProductQuery) -> ApiResult<Page<Product>> {
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        self.call(self.get(&format!("/api/v1/products?{query}"))).await
    }

    pub async fn product(&self, id: uuid::Uuid) -> ApiResult<Product> {
        self.call(self.get(&format!("/api/v1/products/{id}"))).await
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> ApiResult<Issued> {
        let body = serde_json::json!({"name": name, "email": email, "password": password});
        self.call(self.client.request(Method::POST, "/api/v1/auth/register").json(&body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> ApiResult<Issued> {
        let body = serde_json::json!({"email": email, "password": password});
        self.call(self.client.request(Method::POST, "/api/v1/auth/login").json(&body)).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> ApiResult<Issued> {
        let body = serde_json::json!({"refresh_token": refresh_token});
        self.call(self.client.request(Method::POST, "/api/v1/auth/refresh").json(&body)).await
    }

    pub async fn logout(&self, refresh_token: &str) -> ApiResult<()> {
        let body = serde_json::json!({"refresh_token": refresh_token});
        self.call_empty(self.client.request(Method::POST, "/api/v1/auth/logout").json(&body)).await
    }

    pub async fn me(&self, token: &str) -> ApiResult<Me> {
        self.call(self.get("/api/v1/users/me").bearer(token)).await
    }

    pub async fn add_address(&self, token: &str, address: &NewAddress) -> ApiResult<Address> {
        let request =
            self.client.request(Method::POST, "/api/v1/users/me/addresses").bearer(token).json(address);
        self.call(request).await
    }

    pub async fn delete_address(&self, token: &str, id: uuid::Uuid) -> ApiResult<()> {
        let path = format!("/api/v1/users/me/addresses/{id}");
        self.call_empty(self.client.request(Method::DELETE, &path).bearer(token)).await
    }

    pub async fn cart(&self, token: &str) -> ApiResult<Cart> {
        self.call(self.get("/api/v1/cart").bearer(token)).await
    }

    pub async fn set_quantity(&self, token: &str, product: uuid::Uuid, quantity: i64) -> ApiResult<Cart> {
        let path = format!("/api/v1/cart/items/{product}");
        let body = serde_json::json!({"quantity": quantity});
        self.call(self.client.request(Method::PUT, &path).bearer(token).json(&body)).await
    }

    /// What an order of `lines` (product, quantity) would cost now, tax included.
    pub async fn quote(&self, token: &str, lines: &[(uuid::Uuid, i64)]) -> ApiResult<Quote> {
        let items: Vec<_> = lines
            .iter()
            .map(|(id, quantity)| serde_json::json!({"product_id": id, "quantity": quantity}))
            .collect();
        let body = serde_json::json!({ "items": items });
        self.call(self.client.request(Method::POST, "/api/v1/orders/quote").bearer(token).json(&body)).await
    }

    /// Places the cart's order to `address_id`, keyed by `key`: the same key again answers the
    /// order it placed, so a form submitted twice orders once.
    pub async fn checkout(&self, token: &str, address_id: uuid::Uuid, key: &str) -> ApiResult<Order> {
        let body = serde_json::json!({"shipping_address_id": address_id});
        let mut request =
            self.client.request(Method::POST, "/api/v1/cart/checkout").bearer(token).json(&body);
        if let Ok(value) = HeaderValue::from_str(key) {
            request = request.header(HeaderName::from_static("idempotency-key"), value).idempotent();
        }
        self.call(request).await
    }

    pub async fn orders(&self, token: &str, page: u32) -> ApiResult<Page<Order>> {
        self.call(self.get(&format!("/api/v1/orders?page={page}&limit=20")).bearer(token)).await
    }

    pub async fn order(&self, token: &str, id: uuid::Uuid) -> ApiResult<Order> {
        self.call(self.get(&format!("/api/v1/orders/{id}")).bearer(token)).await
    }

    pub async fn cancel_order(&self, token: &str, id: uuid::Uuid) -> ApiResult<Order> {
        let path = format!("/api/v1/orders/{id}/cancel");
        self.call(self.client.request(Method::POST, &path).bearer(token)).await
    }
}
