//! The application layer: the cart's use cases ([`Carts`]), each returning [`CartError`] (what
//! went wrong, never an HTTP status).

use std::collections::HashMap;
use std::sync::Arc;

use contracts::users::AddressBody;
use http::{HeaderValue, StatusCode};
use kit::client::ClientError;
use serde::Deserialize;
use uuid::Uuid;

use crate::clients::{OrderItem, OrderRequest, OrdersAnswer, OrdersClient, ProductsClient};
use crate::domain::{BOUNDS, CatalogEntry, PricedCart, QuantityChange, StoredCart, price};
use crate::store::{CartStore, StoreError};

/// The cart's use cases, with the store and the services they call.
#[derive(Clone)]
pub struct Carts {
    store: Arc<dyn CartStore>,
    products: ProductsClient,
    orders: OrdersClient,
    currency: Arc<str>,
}

/// Why a cart operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error("the cart is empty: add a product before checking out")]
    Empty,
    #[error("product {0} is not for sale (unknown or deleted)")]
    NotForSale(Uuid),
    #[error("the cart holds {0} lines already, the most it may; remove one first")]
    Full(usize),
    #[error(transparent)]
    Store(StoreError),
    #[error("could not read the catalog: {0}")]
    CatalogUnavailable(#[source] ClientError),
    #[error("could not reach the orders service: {0}")]
    OrdersUnavailable(#[source] ClientError),
}

impl From<StoreError> for CartError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Full(lines) => CartError::Full(lines),
            other => CartError::Store(other),
        }
    }
}

/// Where the order of a checkout goes: one of the shopper's saved addresses or one given now
/// (orders checks that exactly one is named).
#[derive(Debug, Clone)]
pub struct ShippingChoice {
    pub saved: Option<Uuid>,
    pub inline: Option<AddressBody>,
}

/// What of an order's answer the cart reads: which lines it took, and whether it stands.
#[derive(Debug, Deserialize)]
struct PlacedOrder {
    id: Uuid,
    status: String,
    items: Vec<PlacedItem>,
}

impl PlacedOrder {
    /// Confirmed or further along. A replayed key answers 200 with the order as it was
    /// settled, which may be cancelled (its stock could not be held): then the cart stays.
    fn stands(&self) -> bool {
        matches!(self.status.as_str(), "confirmed" | "paid" | "shipped" | "delivered")
    }
}

#[derive(Debug, Deserialize)]
struct PlacedItem {
    product_id: Uuid,
    quantity: i64,
}

impl Carts {
    pub fn new(
        store: Arc<dyn CartStore>,
        products: ProductsClient,
        orders: OrdersClient,
        currency: &str,
    ) -> Self {
        Self { store, products, orders, currency: currency.into() }
    }

    /// The user's cart, priced from the catalog now (one lookup for every line).
    pub async fn view(&self, user: Uuid) -> Result<PricedCart, CartError> {
        let cart = self.store.cart(user).await?;
        self.priced(&cart).await
    }

    /// Sets a line's quantity (0 removes it); a product must be for sale to be added or changed.
    pub async fn set_quantity(
        &self,
        user: Uuid,
        product: Uuid,
        change: QuantityChange,
    ) -> Result<PricedCart, CartError> {
        match change {
            QuantityChange::Remove => self.store.remove(user, product).await?,
            QuantityChange::Set(quantity) => {
                let found = self.products.lookup(&[product]).await.map_err(CartError::CatalogUnavailable)?;
                if !found.iter().any(|p| p.id == product && !p.deleted) {
                    return Err(CartError::NotForSale(product));
                }
                self.store.set_quantity(user, product, quantity, BOUNDS.max_lines).await?;
            }
        }
        self.view(user).await
    }

    /// Removes a line (nothing happens when there is none).
    pub async fn remove(&self, user: Uuid, product: Uuid) -> Result<PricedCart, CartError> {
        self.store.remove(user, product).await?;
        self.view(user).await
    }

    /// Empties the cart.
    pub async fn clear(&self, user: Uuid) -> Result<(), CartError> {
        Ok(self.store.clear(user).await?)
    }

    /// Places an order for the cart's lines through orders, with the shopper's `token` and
    /// their `Idempotency-Key`, and answers what orders answered. When orders placed the order
    /// (201) or replayed it (200) and the order stands (confirmed or further), the lines it
    /// contains are taken out of the cart, once per order; on any other answer the cart is left
    /// as it was. A key that placed an order before orders the lines it ordered then, whatever
    /// the cart holds now (it was emptied by that order, or has new lines): so a replay answers
    /// the original order, as `POST /api/v1/orders` does, rather than 400 or a reused key.
    pub async fn checkout(
        &self,
        user: Uuid,
        token: &str,
        idempotency_key: Option<&HeaderValue>,
        shipping: ShippingChoice,
    ) -> Result<OrdersAnswer, CartError> {
        // A key that is not text is orders' to refuse (400); nothing was ordered with it.
        let key = idempotency_key.and_then(|k| k.to_str().ok());
        let ordered_before = match key {
            Some(key) => self.store.checkout_lines(user, key).await?,
            None => None,
        };
        let lines = match ordered_before {
            Some(lines) => lines,
            None => self.store.cart(user).await?.order_lines(),
        };
        if lines.is_empty() {
            return Err(CartError::Empty);
        }
        let request = OrderRequest {
            items: lines
                .iter()
                .map(|(product_id, quantity)| OrderItem { product_id: *product_id, quantity: *quantity })
                .collect(),
            shipping_address_id: shipping.saved,
            shipping_address: shipping.inline,
        };
        let answer = self
            .orders
            .place(token, idempotency_key, &request)
            .await
            .map_err(CartError::OrdersUnavailable)?;
        if matches!(answer.status, StatusCode::CREATED | StatusCode::OK) {
            self.take_out_ordered(user, key, &answer).await;
        }
        Ok(answer)
    }

    /// Takes an order's lines out of the cart. The order exists whatever happens here, so a
    /// failure is logged, not answered: the lines stay in the cart, and a replay of the same
    /// checkout (same Idempotency-Key) takes them out then.
    async fn take_out_ordered(&self, user: Uuid, key: Option<&str>, answer: &OrdersAnswer) {
        let order: PlacedOrder = match serde_json::from_slice(&answer.body) {
            Ok(order) => order,
            Err(e) => {
                tracing::warn!(%user, error = %e, "orders placed an order the cart cannot read; the cart is kept");
                return;
            }
        };
        if !order.stands() {
            tracing::info!(%user, order_id = %order.id, status = %order.status, "the order does not stand; the cart is kept");
            return;
        }
        let lines: Vec<(Uuid, i64)> = order.items.iter().map(|i| (i.product_id, i.quantity)).collect();
        match self.store.remove_ordered(user, order.id, &lines, key).await {
            Ok(true) => tracing::info!(%user, order_id = %order.id, "ordered lines taken out of the cart"),
            Ok(false) => {
                tracing::debug!(%user, order_id = %order.id, "order replayed; taken out of the cart before")
            }
            Err(e) => tracing::warn!(%user, order_id = %order.id, error = %e,
                "the order is placed but its lines are still in the cart; a replay of the checkout takes them out"),
        }
    }

    /// Deletes the cart of a user who was deleted.
    pub async fn forget_user(&self, user: Uuid) -> Result<(), StoreError> {
        self.store.forget_user(user).await
    }

    async fn priced(&self, cart: &StoredCart) -> Result<PricedCart, CartError> {
        let ids: Vec<Uuid> = cart.lines.iter().map(|l| l.product_id).collect();
        let found = self.products.lookup(&ids).await.map_err(CartError::CatalogUnavailable)?;
        let catalog: HashMap<Uuid, CatalogEntry> = found
            .into_iter()
            .map(|p| {
                let entry = CatalogEntry {
                    sku: p.sku,
                    name: p.name,
                    image: p.image,
                    price: p.price,
                    deleted: p.deleted,
                };
                (p.id, entry)
            })
            .collect();
        Ok(price(cart, &catalog, &self.currency))
    }
}
