//! Calls to the services checkout depends on: the users service (the buyer's saved address, on
//! their behalf) and the products service (lookup, reservations, with this service's own token).
//! Every call has the timeouts, retries (idempotent calls only) and circuit breaker of
//! `kit::client`.

use std::sync::Arc;

use http::{Method, StatusCode};
use kit::address::PostalAddress;
use kit::auth::ServiceCredentials;
use kit::client::{ClientError, ServiceClient};
use kit::money::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::OrderLineRequest;

/// A product as the products service describes it for pricing.
#[derive(Debug, Clone, Deserialize)]
pub struct ProductInfo {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub stock: i64,
    pub deleted: bool,
}

#[derive(Debug, Deserialize)]
struct LookupAnswer {
    items: Vec<ProductInfo>,
}

/// A product the products service could not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub product_id: Uuid,
    pub requested: i64,
    pub available: i64,
}

/// What a reservation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Held,
    Short(Vec<Shortage>),
    /// The order's reservation had been released (the order was given up meanwhile).
    Released,
}

#[derive(Serialize)]
struct ReserveBody {
    order_id: Uuid,
    items: Vec<ReserveItem>,
}

#[derive(Serialize)]
struct ReserveItem {
    product_id: Uuid,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct ReservationState {
    status: String,
}

/// The orders service's view of its dependencies.
#[derive(Clone)]
pub struct Dependencies {
    users: ServiceClient,
    products: ServiceClient,
    credentials: Arc<ServiceCredentials>,
}

impl Dependencies {
    pub fn new(users: ServiceClient, products: ServiceClient, credentials: Arc<ServiceCredentials>) -> Self {
        Self { users, products, credentials }
    }

    /// The buyer's saved address, read with their own token; `None` if it is not theirs.
    pub async fn saved_address(
        &self,
        user_token: &str,
        id: Uuid,
    ) -> Result<Option<PostalAddress>, ClientError> {
        match self.users.get_json(&format!("/api/v1/users/me/addresses/{id}"), Some(user_token)).await {
            Ok(address) => Ok(Some(address)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Price, name, SKU and stock of each product found.
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<ProductInfo>, ClientError> {
        let body = serde_json::json!({ "ids": ids });
        let answer: LookupAnswer = self
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

    /// Holds stock for the order (idempotent on the order id, so it is retried).
    pub async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[OrderLineRequest],
    ) -> Result<Reservation, ClientError> {
        let body = ReserveBody {
            order_id,
            items: lines
                .iter()
                .map(|l| ReserveItem { product_id: l.product_id, quantity: l.quantity })
                .collect(),
        };
        let result: Result<serde_json::Value, ClientError> = self
            .as_service(|token| {
                self.products
                    .request(Method::POST, "/internal/v1/reservations")
                    .json(&body)
                    .bearer(token)
                    .idempotent()
            })
            .await;
        match result {
            Ok(_) => Ok(Reservation::Held),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
                let problem = e.problem().unwrap_or_default();
                match problem.get("short").cloned().map(serde_json::from_value::<Vec<Shortage>>) {
                    Some(Ok(short)) => Ok(Reservation::Short(short)),
                    _ => Ok(Reservation::Released),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Returns the order's stock; safe to repeat.
    pub async fn release(&self, order_id: Uuid) -> Result<(), ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}/release");
        let _: serde_json::Value = self
            .as_service(|token| self.products.request(Method::POST, &path).bearer(token).idempotent())
            .await?;
        Ok(())
    }

    /// Whether stock is held for the order right now.
    pub async fn is_held(&self, order_id: Uuid) -> Result<bool, ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}");
        let result: Result<ReservationState, ClientError> =
            self.as_service(|token| self.products.request(Method::GET, &path).bearer(token)).await;
        match result {
            Ok(state) => Ok(state.status == "held"),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends a request as this service; a refused token is renewed once.
    async fn as_service<T, F>(&self, build: F) -> Result<T, ClientError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn(&str) -> kit::client::ServiceRequest,
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
