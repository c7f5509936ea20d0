//! Every wire type pinned to a golden JSON file: a canonical example is serialised and compared
//! byte for byte with `tests/golden/<name>.json`, and the file is read back into the same value.
//! A change to the wire format is therefore a visible diff in review; after a deliberate one,
//! `UPDATE_GOLDEN=1 cargo nextest run -p contracts` rewrites the files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::fmt::Debug;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use contracts::Money;
use contracts::products::{
    LookupRequest, LookupResponse, ProductInfo, ReleaseResponse, Reservation, ReservationConflict,
    ReservationStatus, ReserveItem, ReserveRequest, ReservedItem, Shortage,
};
use contracts::users::{
    AddressBody, AddressView, CreateAddressRequest, ServiceTokenRequest, ServiceTokenResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Compares `example`'s JSON with the golden file `name` and reads the file back.
fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, example: &T) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(example).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        json, expected,
        "the wire format of {name} changed; if that is meant, rerun with UPDATE_GOLDEN=1 and review the diff"
    );
    let read_back: T = serde_json::from_str(&expected).unwrap();
    assert_eq!(&read_back, example, "{name}.json reads back into the same value");
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_f0a0_0000_7000_8000_0000_0000_0000 + n)
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[test]
fn money_is_minor_units_and_a_currency() {
    golden("money", &Money::new(1999, "USD"));
}

#[test]
fn lookup_request_lists_product_ids() {
    golden("lookup_request", &LookupRequest { ids: vec![id(1), id(2)] });
}

#[test]
fn lookup_response_lists_products_found_and_ids_missing() {
    golden(
        "lookup_response",
        &LookupResponse {
            items: vec![ProductInfo {
                id: id(1),
                sku: "MUG-001".into(),
                name: "Enamel Mug".into(),
                price: Money::new(1250, "USD"),
                deleted: false,
                image: Some("/api/v1/images/0190f0a0-mug.webp".into()),
            }],
            missing: vec![id(2)],
        },
    );
}

#[test]
fn reserve_request_names_the_order_and_its_lines() {
    golden(
        "reserve_request",
        &ReserveRequest {
            order_id: id(10),
            items: vec![
                ReserveItem { product_id: id(1), quantity: 2 },
                ReserveItem { product_id: id(2), quantity: 1 },
            ],
        },
    );
}

#[test]
fn reservation_has_a_status_and_its_lines() {
    golden(
        "reservation",
        &Reservation {
            order_id: id(10),
            status: ReservationStatus::Held,
            items: vec![ReservedItem { product_id: id(1), quantity: 2 }],
        },
    );
}

#[test]
fn reservation_statuses_are_lowercase_words() {
    golden("reservation_status", &[ReservationStatus::Held, ReservationStatus::Released]);
}

#[test]
fn a_short_reservation_names_each_product_and_what_is_available() {
    golden(
        "reservation_conflict_short",
        &ReservationConflict::Short {
            short: vec![Shortage { product_id: id(1), requested: 2, available: 1 }],
        },
    );
}

#[test]
fn a_released_reservation_conflict_has_only_its_reason() {
    golden("reservation_conflict_released", &ReservationConflict::Released);
}

#[test]
fn the_conflict_is_read_from_a_whole_problem_body() {
    // Products sends the conflict's members inside a problem+json body.
    let problem = serde_json::json!({
        "type": "urn:mercato:problem:conflict", "title": "Conflict", "status": 409,
        "detail": "this order's reservation was released; use a new order id", "reason": "released",
    });
    assert_eq!(
        serde_json::from_value::<ReservationConflict>(problem).unwrap(),
        ReservationConflict::Released
    );
    let unknown = serde_json::json!({"type": "urn:mercato:problem:conflict", "status": 409, "detail": "?"});
    assert!(
        serde_json::from_value::<ReservationConflict>(unknown).is_err(),
        "a 409 without a known reason is not guessed at"
    );
}

#[test]
fn release_response_says_whether_this_call_returned_the_stock() {
    golden(
        "release_response",
        &ReleaseResponse { order_id: id(10), status: ReservationStatus::Released, released_now: true },
    );
}

#[test]
fn address_body_has_the_six_address_fields() {
    golden(
        "address_body",
        &AddressBody {
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            state: Some("IL".into()),
            postal_code: "62701".into(),
            country: "US".into(),
        },
    );
}

#[test]
fn create_address_request_is_an_address_and_whether_it_is_the_default() {
    let request = CreateAddressRequest {
        line1: "1 Main St".into(),
        line2: Some("Apt 4".into()),
        city: "Springfield".into(),
        state: None,
        postal_code: "62701".into(),
        country: "us".into(),
        is_default: true,
    };
    golden("create_address_request", &request);
    let (address, is_default) = request.into_parts();
    assert_eq!((address.line2.as_deref(), address.country.as_str(), is_default), (Some("Apt 4"), "us", true));
}

#[test]
fn address_view_is_a_saved_address() {
    golden(
        "address_view",
        &AddressView {
            id: id(20),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            state: Some("IL".into()),
            postal_code: "62701".into(),
            country: "US".into(),
            is_default: true,
            created_at: at("2026-11-01T09:30:00Z"),
            updated_at: at("2026-11-02T10:00:00.123456Z"),
        },
    );
}

#[test]
fn service_token_request_carries_client_credentials() {
    golden(
        "service_token_request",
        &ServiceTokenRequest { client_id: "orders".into(), client_secret: "orders-secret-0123456789".into() },
    );
}

#[test]
fn service_token_response_is_a_bearer_token_and_its_lifetime() {
    golden(
        "service_token_response",
        &ServiceTokenResponse::bearer("eyJhbGciOiJFZERTQSJ9.e30.sig".into(), 900),
    );
}

#[test]
fn requests_refuse_unknown_fields_and_answers_tolerate_them() {
    let typo = serde_json::json!({"ids": [id(1)], "idz": []});
    assert!(serde_json::from_value::<LookupRequest>(typo).is_err());
    let typo = serde_json::json!({"client_id": "orders", "client_secret": "s", "scope": "all"});
    assert!(serde_json::from_value::<ServiceTokenRequest>(typo).is_err());
    let newer = serde_json::json!({"order_id": id(10), "status": "held", "items": [], "held_until": null});
    assert_eq!(serde_json::from_value::<Reservation>(newer).unwrap().status, ReservationStatus::Held);
}

/// An event as it travels: the envelope around `data`, with fixed id and time.
fn event<D: contracts::events::EventData>(data: D) -> contracts::events::CloudEvent<D> {
    let mut event = contracts::events::CloudEvent::new(
        "/mercato/test",
        at("2026-11-30T18:00:00.250Z"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        data,
    );
    event.id = id(99);
    event
}

mod events {
    use contracts::events::{
        OrderCancelled, OrderLine, OrderPlaced, OrderStatusChanged, ProductCreated, ProductDeleted,
        ProductSnapshot, ProductStockLow, ProductUpdated, UserDeleted, UserRegistered, UserRoleChanged,
    };

    use super::{Money, at, event, golden, id};

    fn product() -> ProductSnapshot {
        ProductSnapshot {
            product_id: id(1),
            sku: "MUG-001".into(),
            name: "Enamel Mug".into(),
            category: "kitchen".into(),
            brand: Some("Camp".into()),
            price: Money::new(1250, "USD"),
            stock: 40,
        }
    }

    fn line() -> OrderLine {
        OrderLine {
            product_id: id(1),
            sku: "MUG-001".into(),
            quantity: 2,
            unit_price: Money::new(1250, "USD"),
        }
    }

    #[test]
    fn user_registered() {
        golden(
            "event_user_registered",
            &event(UserRegistered {
                user_id: id(30),
                name: "Ada".into(),
                email: "ada@example.com".into(),
                role: "customer".into(),
                registered_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn user_deleted() {
        golden(
            "event_user_deleted",
            &event(UserDeleted { user_id: id(30), deleted_at: at("2026-11-30T18:00:00.250Z") }),
        );
    }

    #[test]
    fn user_role_changed() {
        golden(
            "event_user_role_changed",
            &event(UserRoleChanged {
                user_id: id(30),
                previous_role: "admin".into(),
                role: "customer".into(),
                changed_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn product_created() {
        golden(
            "event_product_created",
            &event(ProductCreated { product: product(), created_at: at("2026-11-30T18:00:00.250Z") }),
        );
    }

    #[test]
    fn product_updated() {
        golden(
            "event_product_updated",
            &event(ProductUpdated { product: product(), updated_at: at("2026-11-30T18:00:00.250Z") }),
        );
    }

    #[test]
    fn product_deleted() {
        golden(
            "event_product_deleted",
            &event(ProductDeleted {
                product_id: id(1),
                sku: "MUG-001".into(),
                deleted_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn product_stock_low() {
        golden(
            "event_product_stock_low",
            &event(ProductStockLow {
                product_id: id(1),
                sku: "MUG-001".into(),
                stock: 9,
                threshold: 10,
                at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn order_placed() {
        golden(
            "event_order_placed",
            &event(OrderPlaced {
                order_id: id(10),
                user_id: id(30),
                items: vec![line()],
                total: Money::new(2700, "USD"),
                placed_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn order_cancelled() {
        golden(
            "event_order_cancelled",
            &event(OrderCancelled {
                order_id: id(10),
                user_id: id(30),
                reason: Some("cancelled by the customer".into()),
                items: vec![line()],
                cancelled_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }

    #[test]
    fn order_status_changed() {
        golden(
            "event_order_status_changed",
            &event(OrderStatusChanged {
                order_id: id(10),
                user_id: id(30),
                from: "paid".into(),
                to: "shipped".into(),
                changed_at: at("2026-11-30T18:00:00.250Z"),
            }),
        );
    }
}
