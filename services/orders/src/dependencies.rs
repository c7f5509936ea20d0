//! Calls to the services checkout depends on: the users service (the buyer's saved address, on
//! their behalf) and the products service (lookup, reservations, with this service's own token).
//! Every call has the timeouts, retries (idempotent calls only) and circuit breaker of
//! `kit::client`.

use std::sync::Arc;

use contracts::products::{
    LookupRequest, LookupResponse, ProductInfo, Reservation as ReservationAnswer, ReservationConflict,
    ReservationStatus, ReserveItem, ReserveRequest, Shortage,
};
use contracts::users::AddressView;
use http::{Method, StatusCode};
use kit::address::PostalAddress;
use kit::auth::ServiceCredentials;
use kit::client::{ClientError, ServiceClient};
use uuid::Uuid;

use crate::domain::OrderLineRequest;

/// What a reservation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Held,
    Short(Vec<Shortage>),
    /// The order's reservation had been released (the order was given up meanwhile).
    Released,
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

    /// Price, name, SKU and stock of each product found.
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
    ) -> Result<Reservation, ClientError> {
        let body = ReserveRequest {
            order_id,
            items: lines
                .iter()
                .map(|l| ReserveItem { product_id: l.product_id, quantity: l.quantity })
                .collect(),
        };
        let result: Result<ReservationAnswer, ClientError> = self
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
                // A 409 whose reason cannot be read is not guessed at: the outcome is unknown.
                match e.problem().map(serde_json::from_value::<ReservationConflict>) {
                    Some(Ok(ReservationConflict::Short { short })) => Ok(Reservation::Short(short)),
                    Some(Ok(ReservationConflict::Released)) => Ok(Reservation::Released),
                    _ => Err(ClientError::Decode {
                        service: "products".to_owned(),
                        reason: "a reservation conflict without a known reason".to_owned(),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Returns the order's stock; safe to repeat.
    pub async fn release(&self, order_id: Uuid) -> Result<(), ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}/release");
        let _: contracts::products::ReleaseResponse = self
            .as_service(|token| self.products.request(Method::POST, &path).bearer(token).idempotent())
            .await?;
        Ok(())
    }

    /// Whether stock is held for the order right now.
    pub async fn is_held(&self, order_id: Uuid) -> Result<bool, ClientError> {
        let path = format!("/internal/v1/reservations/{order_id}");
        let result: Result<ReservationAnswer, ClientError> =
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
