//! The orders store on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use chrono::Utc;
use kit::address::PostalAddress;
use kit::testing::{Backend, TestDatabase};
use orders::domain::{OrderStatus, PricedLine, Totals};
use orders::store::{NewOrder, OrderFilter, OrderStore, StoreError};
use uuid::Uuid;

async fn store(backend: Backend) -> (OrderStore, TestDatabase) {
    let db = TestDatabase::new(backend, "orders_store").await;
    let store = OrderStore::new(kit::db::connect(&db.config).await.unwrap());
    store.migrate().await.unwrap();
    (store, db)
}

fn new_order(user: Uuid, key: Option<&str>) -> NewOrder {
    let lines = vec![
        PricedLine::new(Uuid::now_v7(), "MUG-1".into(), "Mug".into(), 1250, 2).unwrap(),
        PricedLine::new(Uuid::now_v7(), "TEA-1".into(), "Tea".into(), 499, 1).unwrap(),
    ];
    let totals = Totals::of(&lines, 825).unwrap();
    NewOrder {
        user_id: user,
        currency: "USD".into(),
        lines,
        totals,
        shipping_address: PostalAddress {
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            state: Some("IL".into()),
            postal_code: "62701".into(),
            country: "US".into(),
        },
        idempotency_key: key.map(str::to_owned),
        fingerprint: "f".repeat(64),
    }
}

kit::on_both_backends!(
    orders_keep_their_lines_totals_and_address,
    one_idempotency_key_one_order_per_user,
    only_one_of_concurrent_transitions_wins,
    lists_filter_page_and_cursor,
    stale_pending_and_unreleased_cancellations_are_found,
    stats_count_sales_and_revenue,
    stats_add_up_revenue_beyond_64_bits,
    deferred_orders_wait_for_their_backoff,
    one_worker_at_a_time_claims_an_order,
);

async fn orders_keep_their_lines_totals_and_address(backend: Backend) {
    let (store, _db) = store(backend).await;
    let order = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].line_total, 2500);
    assert_eq!((order.totals.subtotal, order.totals.tax, order.totals.total), (2999, 247, 3246));
    assert_eq!(order.shipping_address.city, "Springfield");
    assert_eq!(store.get(order.id).await.unwrap().unwrap(), order);
}

async fn one_idempotency_key_one_order_per_user(backend: Backend) {
    let (store, _db) = store(backend).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = store.create_pending(new_order(ada, Some("k1"))).await.unwrap();
    assert!(matches!(store.create_pending(new_order(ada, Some("k1"))).await, Err(StoreError::DuplicateKey)));
    assert!(store.create_pending(new_order(bob, Some("k1"))).await.is_ok(), "keys are per user");
    assert!(store.create_pending(new_order(ada, None)).await.is_ok());
    assert!(store.create_pending(new_order(ada, None)).await.is_ok(), "no key, no uniqueness");
    assert_eq!(store.by_idempotency_key(ada, "k1").await.unwrap().unwrap().id, first.id);
}

async fn only_one_of_concurrent_transitions_wins(backend: Backend) {
    let (store, _db) = store(backend).await;
    let order = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transition(order.id, &OrderStatus::cancellable(), OrderStatus::Cancelled, Some("test"))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let cancelled = store.get(order.id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.status_reason.as_deref()),
        (OrderStatus::Cancelled, Some("test"))
    );
    assert!(
        store
            .transition(order.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn lists_filter_page_and_cursor(backend: Backend) {
    let (store, _db) = store(backend).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    for _ in 0..5 {
        store.create_pending(new_order(ada, None)).await.unwrap();
    }
    let bobs = store.create_pending(new_order(bob, None)).await.unwrap();
    store.transition(bobs.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await.unwrap();

    let mine = OrderFilter { user_id: Some(ada), status: None };
    let (page, total) = store.list(&mine, 0, 2).await.unwrap();
    assert_eq!((page.len(), total), (2, 5));
    assert!(page[0].created_at >= page[1].created_at, "newest first");
    let (confirmed, total) = store
        .list(&OrderFilter { user_id: None, status: Some(OrderStatus::Confirmed) }, 0, 10)
        .await
        .unwrap();
    assert_eq!((confirmed[0].id, total), (bobs.id, 1));

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (orders, more) = store.list_after(&mine, after, 2).await.unwrap();
        seen.extend(orders.iter().map(|o| o.id));
        if !more {
            break;
        }
        let last = orders.last().unwrap();
        after = Some((last.created_at, last.id));
    }
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

async fn stale_pending_and_unreleased_cancellations_are_found(backend: Backend) {
    let (store, _db) = store(backend).await;
    let stuck = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    let done = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    store.transition(done.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await.unwrap();
    let stale = store.stale_pending(Utc::now() + chrono::Duration::seconds(1), 10).await.unwrap();
    assert_eq!(stale.iter().map(|o| o.id).collect::<Vec<_>>(), [stuck.id]);
    assert!(store.stale_pending(Utc::now() - chrono::Duration::hours(1), 10).await.unwrap().is_empty());

    store.transition(done.id, &OrderStatus::cancellable(), OrderStatus::Cancelled, None).await.unwrap();
    assert_eq!(store.unreleased_cancellations(10).await.unwrap().len(), 1);
    store.mark_stock_released(done.id).await.unwrap();
    assert!(store.unreleased_cancellations(10).await.unwrap().is_empty());
}

async fn stats_count_sales_and_revenue(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = Uuid::now_v7();
    for status in [OrderStatus::Confirmed, OrderStatus::Delivered, OrderStatus::Cancelled] {
        let order = store.create_pending(new_order(user, None)).await.unwrap();
        let mut path = vec![OrderStatus::Pending];
        for next in [OrderStatus::Confirmed, OrderStatus::Paid, OrderStatus::Shipped, OrderStatus::Delivered]
        {
            if status == OrderStatus::Cancelled {
                store
                    .transition(order.id, &[OrderStatus::Pending], OrderStatus::Cancelled, None)
                    .await
                    .unwrap();
                break;
            }
            store.transition(order.id, &path, next, None).await.unwrap();
            path = vec![next];
            if next == status {
                break;
            }
        }
    }
    store.create_pending(new_order(user, None)).await.unwrap();
    let stats = store.stats(None, None).await.unwrap();
    assert_eq!(stats.orders, 2);
    assert_eq!(stats.revenue, 2 * 3246);
    assert_eq!(stats.by_status[&OrderStatus::Cancelled], 1);
    assert_eq!(stats.by_status[&OrderStatus::Pending], 1);
    assert_eq!(stats.by_status[&OrderStatus::Paid], 0);
    let future = store.stats(Some(Utc::now() + chrono::Duration::hours(1)), None).await.unwrap();
    assert_eq!((future.orders, future.revenue), (0, 0));
}

/// An order whose lines total `total` minor units (tax-free).
fn order_worth(total: i64) -> NewOrder {
    let line = PricedLine::new(Uuid::now_v7(), "BIG-1".into(), "Yacht".into(), total, 1).unwrap();
    let totals = Totals::of(std::slice::from_ref(&line), 0).unwrap();
    NewOrder { lines: vec![line], totals, ..new_order(Uuid::now_v7(), None) }
}

async fn stats_add_up_revenue_beyond_64_bits(backend: Backend) {
    let (store, _db) = store(backend).await;
    let each = 4_000_000_000_000_000_007i64;
    for _ in 0..3 {
        let order = store.create_pending(order_worth(each)).await.unwrap();
        store.transition(order.id, &[OrderStatus::Pending], OrderStatus::Confirmed, None).await.unwrap();
    }
    let stats = store.stats(None, None).await.unwrap();
    assert_eq!(stats.orders, 3);
    assert_eq!(stats.revenue, 3 * i128::from(each));
}

async fn deferred_orders_wait_for_their_backoff(backend: Backend) {
    let (store, _db) = store(backend).await;
    let oldest = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    let next = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    let first = store.stale_pending(cutoff, 1).await.unwrap();
    assert_eq!(first[0].id, oldest.id);

    store.defer_recovery(oldest.id, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    let due = store.stale_pending(cutoff, 1).await.unwrap();
    assert_eq!(due[0].id, next.id, "a deferred order no longer stands in front");
    assert_eq!(store.get(oldest.id).await.unwrap().unwrap().recovery_attempts, 1);

    store.defer_recovery(next.id, Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(store.stale_pending(cutoff, 10).await.unwrap()[0].id, next.id, "its backoff has passed");

    store.transition(next.id, &[OrderStatus::Pending], OrderStatus::Cancelled, None).await.unwrap();
    assert_eq!(store.unreleased_cancellations(10).await.unwrap().len(), 1);
    store.defer_recovery(next.id, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert!(store.unreleased_cancellations(10).await.unwrap().is_empty());
}

async fn one_worker_at_a_time_claims_an_order(backend: Backend) {
    let (store, _db) = store(backend).await;
    let order = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
    let lease = chrono::Duration::minutes(1);
    let claims =
        futures_util::future::join_all((0..8).map(|_| store.claim_for_recovery(order.id, lease))).await;
    assert_eq!(claims.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1, "exactly one claim wins");
    let cutoff = Utc::now() + chrono::Duration::seconds(1);
    assert!(
        store.stale_pending(cutoff, 10).await.unwrap().is_empty(),
        "a claimed order is not due for others"
    );
    assert!(!store.claim_for_recovery(order.id, lease).await.unwrap());

    // Once the lease has passed (the claimant died), another worker may claim it.
    store.defer_recovery(order.id, Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
    assert!(store.claim_for_recovery(order.id, lease).await.unwrap());
}

mod events {
    //! Each status move records its event in the same transaction.
    use contracts::events::{EventData, OrderCancelled, OrderPlaced, OrderStatusChanged};
    use kit::testing::{Backend, outbox_events};
    use orders::domain::OrderStatus;
    use uuid::Uuid;

    use super::{new_order, store};

    kit::on_both_backends!(
        status_moves_record_placed_changed_and_cancelled,
        a_lost_transition_records_nothing
    );

    async fn status_moves_record_placed_changed_and_cancelled(backend: Backend) {
        let (store, _db) = store(backend).await;
        let user = Uuid::now_v7();
        let order = store.create_pending(new_order(user, None)).await.unwrap();
        assert!(outbox_events(store.connection()).await.is_empty(), "a pending order is no event yet");
        let confirmed = store
            .transition_order(order, &[OrderStatus::Pending], OrderStatus::Confirmed, None)
            .await
            .unwrap()
            .unwrap();
        store
            .transition(confirmed.id, &[OrderStatus::Confirmed], OrderStatus::Paid, None)
            .await
            .unwrap()
            .unwrap();
        store
            .transition(
                confirmed.id,
                &OrderStatus::cancellable(),
                OrderStatus::Cancelled,
                Some("changed my mind"),
            )
            .await
            .unwrap()
            .unwrap();

        let events = outbox_events(store.connection()).await;
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, [OrderPlaced::TYPE, OrderStatusChanged::TYPE, OrderCancelled::TYPE]);
        let placed = events[0].decode::<OrderPlaced>().unwrap().unwrap().data;
        assert_eq!((placed.order_id, placed.user_id, placed.items.len()), (confirmed.id, user, 2));
        assert_eq!((placed.total.amount, placed.total.currency.as_str()), (3246, "USD"));
        assert_eq!((placed.items[0].quantity, placed.items[0].unit_price.amount), (2, 1250));
        let changed = events[1].decode::<OrderStatusChanged>().unwrap().unwrap().data;
        assert_eq!((changed.from.as_str(), changed.to.as_str()), ("confirmed", "paid"));
        let cancelled = events[2].decode::<OrderCancelled>().unwrap().unwrap().data;
        assert_eq!(cancelled.reason.as_deref(), Some("changed my mind"));
        assert_eq!(events[2].subject, Some(confirmed.id.to_string()));
    }

    async fn a_lost_transition_records_nothing(backend: Backend) {
        let (store, _db) = store(backend).await;
        let order = store.create_pending(new_order(Uuid::now_v7(), None)).await.unwrap();
        let moved =
            store.transition(order.id, &[OrderStatus::Paid], OrderStatus::Shipped, None).await.unwrap();
        assert!(moved.is_none(), "not paid: no move");
        assert!(outbox_events(store.connection()).await.is_empty(), "no move, no event");
    }
}
