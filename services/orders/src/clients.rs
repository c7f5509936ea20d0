//! The typed HTTP clients of the services checkout depends on, speaking `contracts` types: the
//! users service (the buyer's saved address, read on their behalf) and the products service
//! (lookup and reservations, called with this service's own token). Every call has the
//! timeouts, retries (idempotent calls only) and circuit breaker of `kit::client`.

use std::sync::Arc;

use contracts::products::{
    LookupRequest, LookupResponse, ProductInfo, ReleaseResponse, Reservation, ReservationConflict,
    ReservationStatus, ReserveItem, ReserveRequest, Shortage,
};
use contracts::users::AddressView;
use http::{Method, StatusCode};
use kit::address::PostalAddress;
use kit::auth::ServiceCredentials;
use kit::client::{ClientError, ServiceClient, ServiceRequest};
use uuid::Uuid;

use crate::domain::OrderLineRequest;

/// The users service, on the buyer's behalf.
#[derive(Clone)]
pub struct UsersClient {
    users: ServiceClient,
}

impl UsersClient {
    pub fn new(users: ServiceClient) -> Self {
        Self { users }
    }

    /// The buyer's saved address, read with their own token; `None` if it is not theirs.
    pub async fn saved_address(
        &self,
        user_token: &str,
        id: Uuid,
    ) -> Result<Option<PostalAddress>, ClientError> {
        let path = format!("/api/v1/users/me/addresses/{id}");
        match self.users.get_json::<AddressView>(&path, Some(user_token)).await {
            Ok(saved) => Ok(Some(PostalAddress {
                line1: saved.line1,
                line2: saved.line2,
                city: saved.city,
                state: saved.state,
                postal_code: saved.postal_code,
                country: saved.country,
            })),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What an attempt to reserve an order's stock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Every line is held.
    Held,
    /// Some lines could not be held; nothing was taken.
    Short(Vec<Shortage>),
    /// The order's reservation had been released before this attempt (the order was given up
    /// meanwhile, by the recovery worker or a cancel): nothing is held, and nothing will be.
    AlreadyReleased,
}

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

    /// Price, name and SKU of each product found (deleted ones flagged).
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<ProductInfo>, ClientError> {
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

    /// Holds stock for the order (idempotent on the order id, so it is retried).
    pub async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[OrderLineRequest],
    ) -> Result<ReserveOutcome, ClientError> {
        let body = ReserveRequest {
            order_id,
            items: lines
                .iter()
                .map(|l| ReserveItem { product_id: l.product_id, quantity: l.quantity })
                .collect(),
        };
        let result: Result<Reservation, ClientError> = self
            .as_service(|token| {
                self.products
                    .request(Method::POST, "/internal/v1/reservations")
                    .json(&body)
                    .bearer(token)
                    .idempotent()
            })
            .await;
        match result {
            Ok(_) => Ok(ReserveOutcome::Held),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
                // A 409 whose reason cannot be read is not guessed at: the outcome is unknown.
                match e.problem().map(serde_json::from_value::<ReservationConflict>) {
                    Some(Ok(ReservationConflict::Short { short })) => Ok(ReserveOutcome::Short(short)),
                    Some(Ok(ReservationConflict::Released)) => Ok(ReserveOutcome::AlreadyReleased),
                    _ => Err(ClientError::Decode {
                        service: "products".to_owned(),
                        reason: "a reservation conflict without a known reason".to_owned(),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Returns the order's stock; safe to repeat. Releasing an order never reserved records it
    /// as given up, so a reservation still in flight for it is refused.
    pub async fn release(&self, order_id: Uuid) -> Result<(), ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}/release");
        let _: ReleaseResponse = self
            .as_service(|token| self.products.request(Method::POST, &path).bearer(token).idempotent())
            .await?;
        Ok(())
    }

    /// Whether stock is held for the order right now.
    pub async fn is_held(&self, order_id: Uuid) -> Result<bool, ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}");
        let result: Result<Reservation, ClientError> =
            self.as_service(|token| self.products.request(Method::GET, &path).bearer(token)).await;
        match result {
            Ok(reservation) => Ok(reservation.status == ReservationStatus::Held),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(false),
            Err(e) => Err(e),
        }
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
