//! The services a cart depends on, speaking `contracts` types: products (one batched lookup per
//! read, with this service's own token) and orders (checkout, on the shopper's behalf with
//! their token). Every call has the timeouts, retries (idempotent calls only) and circuit
//! breaker of `kit::client`.

use std::sync::Arc;

use bytes::Bytes;
use contracts::products::{LookupRequest, LookupResponse, ProductInfo};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use kit::auth::ServiceCredentials;
use kit::client::{ClientError, ServiceClient, ServiceRequest};
use serde::Serialize;
use uuid::Uuid;

/// The products service, as this service (its own service token).
#[derive(Clone)]
pub struct ProductsClient {
    products: ServiceClient,
    credentials: Arc<ServiceCredentials>,
}

impl ProductsClient {
    pub fn new(products: ServiceClient, credentials: Arc<ServiceCredentials>) -> Self {
        Self { products, credentials }
    }

    /// Name, SKU, price, first image and deleted flag of each product found, in one call (a
    /// cart holds at most as many lines as one lookup takes ids).
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<ProductInfo>, ClientError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let body = LookupRequest { ids: ids.to_vec() };
        let answer: LookupResponse = self
            .as_service(|token| {
                self.products
                    .request(Method::POST, "/internal/v1/products/lookup")
                    .json(&body)
                    .bearer(token)
                    .idempotent()
            })
            .await?;
        Ok(answer.items)
    }

    /// Sends a request as this service; a refused token is renewed once.
    async fn as_service<T, F>(&self, build: F) -> Result<T, ClientError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(&str) -> ServiceRequest,
    {
        let token = self.credentials.token().await?;
        match self.products.send_json(build(&token)).await {
            Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => {
                self.credentials.invalidate().await;
                let token = self.credentials.token().await?;
                self.products.send_json(build(&token)).await
            }
            other => other,
        }
    }
}

/// `POST /api/v1/orders` as a checkout sends it: the cart's lines and the shopper's address.
#[derive(Debug, Serialize)]
pub struct OrderRequest {
    pub items: Vec<OrderItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<contracts::users::AddressBody>,
}

/// One line of [`OrderRequest`].
#[derive(Debug, Serialize)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// Whatever orders answered, to be answered as is.
#[derive(Debug, Clone)]
pub struct OrdersAnswer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub location: Option<HeaderValue>,
    pub body: Bytes,
}

/// The orders service, on the shopper's behalf.
#[derive(Clone)]
pub struct OrdersClient {
    orders: ServiceClient,
}

impl OrdersClient {
    pub fn new(orders: ServiceClient) -> Self {
        Self { orders }
    }

    /// Places the order with the shopper's `token`, passing `idempotency_key` on. With a key
    /// the call is safe to retry (orders answers a replay with the same order); without one
    /// it is sent once.
    pub async fn place(
        &self,
        token: &str,
        idempotency_key: Option<&HeaderValue>,
        body: &OrderRequest,
    ) -> Result<OrdersAnswer, ClientError> {
        let mut request = self.orders.request(Method::POST, "/api/v1/orders").json(body).bearer(token);
        if let Some(key) = idempotency_key {
            request = request.header(HeaderName::from_static("idempotency-key"), key.clone()).idempotent();
        }
        let response = self.orders.send(request).await?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let location = response.headers().get(header::LOCATION).cloned();
        let body = response.bytes().await.map_err(|e| ClientError::Unreachable {
            service: "orders".to_owned(),
            reason: format!("its answer was cut off: {e}"),
        })?;
        Ok(OrdersAnswer { status, content_type, location, body })
    }
}
