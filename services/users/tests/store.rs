//! The users store on both backends: the same behaviour on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use chrono::{Duration, Utc};
use kit::auth::Role;
use kit::testing::{Backend, TestDatabase};
use users::domain::{NewAddress, UserSearch};
use users::store::{NewUser, Rotation, StoreError, UserPatch, UserStore};
use uuid::Uuid;

fn search(text: &str) -> Option<UserSearch> {
    UserSearch::parse(text).unwrap()
}

async fn store(backend: Backend) -> (UserStore, TestDatabase) {
    let db = TestDatabase::new(backend, "users_store").await;
    let store = UserStore::new(kit::db::connect(&db.config).await.expect("connect"));
    store.migrate().await.expect("migrate");
    (store, db)
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        name: "Ada".into(),
        email: email.into(),
        email_normalized: email.to_lowercase(),
        phone: None,
        password_hash: "$argon2id$fake".into(),
        role: Role::Customer,
    }
}

fn address(line1: &str, is_default: bool) -> NewAddress {
    let address = kit::address::PostalAddress {
        line1: line1.into(),
        line2: None,
        city: "Berlin".into(),
        state: None,
        postal_code: "10115".into(),
        country: "DE".into(),
    };
    NewAddress { address, is_default }
}

kit::on_both_backends!(
    the_last_admin_can_be_neither_demoted_nor_deleted,
    two_admins_removing_each_other_at_once_leave_one,
    email_is_unique_among_live_users_ignoring_case,
    deleted_users_vanish_and_free_their_email,
    refresh_token_rotates_once_and_reuse_revokes_the_family,
    concurrent_rotation_lets_exactly_one_through,
    expired_refresh_token_is_refused,
    deleting_a_user_revokes_their_refresh_tokens,
    first_address_is_default_and_a_new_default_demotes_the_old,
    deleting_the_default_address_promotes_the_oldest,
    addresses_of_another_user_are_invisible,
    user_search_matches_name_or_email_and_treats_wildcards_literally,
    patch_changes_only_given_fields,
    concurrent_writes_to_one_address_book_all_succeed_and_leave_one_default,
);

/// Every write to an address book starts by writing (no read first): on SQLite a transaction
/// that read before another committed cannot write any more (`database is locked`, code 517),
/// whatever the busy timeout.
async fn concurrent_writes_to_one_address_book_all_succeed_and_leave_one_default(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let first = store.create_address(user.id, address("Home", false)).await.unwrap();
    let writes = (0..16).map(|i| {
        let store = store.clone();
        let first = first.id;
        tokio::spawn(async move {
            match i % 4 {
                0 => {
                    store.create_address(user.id, address(&format!("New {i}"), i % 8 == 0)).await.map(|_| ())
                }
                1 => {
                    let changes =
                        users::domain::AddressChanges { is_default: Some(true), ..Default::default() };
                    store.update_address(user.id, first, changes).await.map(|_| ())
                }
                2 => {
                    let patch = UserPatch { name: Some(format!("Ada {i}")), ..UserPatch::default() };
                    store.update_user(user.id, patch).await.map(|_| ())
                }
                _ => store.address(user.id, first).await.map(|_| ()),
            }
        })
    });
    for write in futures_util::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    let book = store.addresses(user.id).await.unwrap();
    assert_eq!(book.iter().filter(|a| a.is_default).count(), 1, "{book:?}");
}

async fn email_is_unique_among_live_users_ignoring_case(backend: Backend) {
    let (store, _db) = store(backend).await;
    store.create_user(new_user("ada@example.com")).await.unwrap();
    let err = store.create_user(new_user("ADA@example.com")).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err}");
}

async fn deleted_users_vanish_and_free_their_email(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    assert!(store.soft_delete(user.id).await.unwrap());
    assert!(!store.soft_delete(user.id).await.unwrap(), "deleting twice reports nothing to delete");
    assert!(store.find_live(user.id).await.unwrap().is_none());
    assert!(store.find_live_by_email("ada@example.com").await.unwrap().is_none());
    let again = store.create_user(new_user("ada@example.com")).await.unwrap();
    assert_ne!(again.id, user.id);
}

async fn refresh_token_rotates_once_and_reuse_revokes_the_family(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let family = Uuid::now_v7();
    let later = Utc::now() + Duration::days(1);
    store.insert_refresh_token(user.id, family, "h1".into(), later).await.unwrap();

    assert_eq!(
        store.rotate_refresh_token("h1", "h2".into(), later).await.unwrap(),
        Rotation::Rotated { user_id: user.id }
    );
    assert_eq!(store.rotate_refresh_token("h1", "h3".into(), later).await.unwrap(), Rotation::Reused);
    // The reuse revoked the successor too: the whole sign-in is over.
    assert_eq!(store.rotate_refresh_token("h2", "h4".into(), later).await.unwrap(), Rotation::Reused);
    assert_eq!(store.rotate_refresh_token("unknown", "h5".into(), later).await.unwrap(), Rotation::Refused);
}

async fn concurrent_rotation_lets_exactly_one_through(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let later = Utc::now() + Duration::days(1);
    store.insert_refresh_token(user.id, Uuid::now_v7(), "h0".into(), later).await.unwrap();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.rotate_refresh_token("h0", format!("next{i}"), later).await })
    });
    let mut rotated = 0;
    for attempt in attempts {
        if let Rotation::Rotated { .. } = attempt.await.unwrap().unwrap() {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
}

async fn expired_refresh_token_is_refused(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let past = Utc::now() - Duration::seconds(1);
    store.insert_refresh_token(user.id, Uuid::now_v7(), "old".into(), past).await.unwrap();
    let next = Utc::now() + Duration::days(1);
    assert_eq!(store.rotate_refresh_token("old", "new".into(), next).await.unwrap(), Rotation::Refused);
}

async fn deleting_a_user_revokes_their_refresh_tokens(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let later = Utc::now() + Duration::days(1);
    store.insert_refresh_token(user.id, Uuid::now_v7(), "live".into(), later).await.unwrap();
    store.soft_delete(user.id).await.unwrap();
    assert_ne!(
        store.rotate_refresh_token("live", "next".into(), later).await.unwrap(),
        Rotation::Rotated { user_id: user.id }
    );
}

async fn first_address_is_default_and_a_new_default_demotes_the_old(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let first = store.create_address(user.id, address("Home 1", false)).await.unwrap();
    assert!(first.is_default);
    let second = store.create_address(user.id, address("Work 2", false)).await.unwrap();
    assert!(!second.is_default);
    let third = store.create_address(user.id, address("New 3", true)).await.unwrap();
    assert!(third.is_default);
    let defaults: Vec<_> =
        store.addresses(user.id).await.unwrap().into_iter().filter(|a| a.is_default).map(|a| a.id).collect();
    assert_eq!(defaults, vec![third.id]);
}

async fn deleting_the_default_address_promotes_the_oldest(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store.create_user(new_user("ada@example.com")).await.unwrap();
    let home = store.create_address(user.id, address("Home", false)).await.unwrap();
    let work = store.create_address(user.id, address("Work", false)).await.unwrap();
    assert!(store.delete_address(user.id, home.id).await.unwrap());
    let remaining = store.addresses(user.id).await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].id, work.id);
    assert!(remaining[0].is_default);
}

async fn addresses_of_another_user_are_invisible(backend: Backend) {
    let (store, _db) = store(backend).await;
    let ada = store.create_user(new_user("ada@example.com")).await.unwrap();
    let bob = store.create_user(new_user("bob@example.com")).await.unwrap();
    let home = store.create_address(ada.id, address("Ada's", false)).await.unwrap();
    assert!(store.address(bob.id, home.id).await.unwrap().is_none());
    assert!(store.update_address(bob.id, home.id, Default::default()).await.unwrap().is_none());
    assert!(!store.delete_address(bob.id, home.id).await.unwrap());
    assert!(store.address(ada.id, home.id).await.unwrap().is_some());
}

async fn user_search_matches_name_or_email_and_treats_wildcards_literally(backend: Backend) {
    let (store, _db) = store(backend).await;
    for (name, email) in
        [("Grace Hopper", "grace@navy.mil"), ("Alan Turing", "alan@bletchley.uk"), ("100% Real", "real@x.io")]
    {
        store.create_user(NewUser { name: name.into(), ..new_user(email) }).await.unwrap();
    }
    let (hits, total) = store.list_users(search("HOPPER").as_ref(), 0, 10).await.unwrap();
    assert_eq!((hits.len(), total), (1, 1));
    let (hits, _) = store.list_users(search("bletchley").as_ref(), 0, 10).await.unwrap();
    assert_eq!(hits[0].name, "Alan Turing");
    let (hits, _) = store.list_users(search("%").as_ref(), 0, 10).await.unwrap();
    assert_eq!(hits.len(), 1, "a % in the query is a literal percent sign");
    let (all, total) = store.list_users(None, 0, 2).await.unwrap();
    assert_eq!((all.len(), total), (2, 3));
}

async fn patch_changes_only_given_fields(backend: Backend) {
    let (store, _db) = store(backend).await;
    let user = store
        .create_user(NewUser { phone: Some("+49 30 123456".into()), ..new_user("ada@example.com") })
        .await
        .unwrap();
    let patched = store
        .update_user(user.id, UserPatch { name: Some("Ada L.".into()), ..UserPatch::default() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.name, "Ada L.");
    assert_eq!(patched.phone.as_deref(), Some("+49 30 123456"));
    let cleared = store
        .update_user(user.id, UserPatch { phone: Some(None), ..UserPatch::default() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.phone, None);
}

fn admin(email: &str) -> NewUser {
    NewUser { role: Role::Admin, ..new_user(email) }
}

fn demote() -> UserPatch {
    UserPatch { role: Some(Role::Customer), ..UserPatch::default() }
}

async fn the_last_admin_can_be_neither_demoted_nor_deleted(backend: Backend) {
    let (store, _db) = store(backend).await;
    let root = store.create_user(admin("root@shop.test")).await.unwrap();
    let customer = store.create_user(new_user("ada@example.com")).await.unwrap();
    assert!(matches!(store.update_user(root.id, demote()).await, Err(StoreError::LastAdmin)));
    assert!(matches!(store.soft_delete(root.id).await, Err(StoreError::LastAdmin)));
    let renamed = UserPatch { name: Some("Root".into()), role: Some(Role::Admin), ..UserPatch::default() };
    assert_eq!(store.update_user(root.id, renamed).await.unwrap().unwrap().name, "Root");
    // Customers come and go as before.
    assert!(store.update_user(customer.id, demote()).await.unwrap().is_some());
    assert!(store.soft_delete(customer.id).await.unwrap());
    // With a second admin, either may go.
    let second = store.create_user(admin("second@shop.test")).await.unwrap();
    assert!(store.update_user(root.id, demote()).await.unwrap().is_some());
    assert!(matches!(store.soft_delete(second.id).await, Err(StoreError::LastAdmin)));
}

async fn two_admins_removing_each_other_at_once_leave_one(backend: Backend) {
    let (store, _db) = store(backend).await;
    let mut survivor = None;
    for round in 0..10 {
        let a = store.create_user(admin(&format!("a{round}@shop.test"))).await.unwrap();
        let b = store.create_user(admin(&format!("b{round}@shop.test"))).await.unwrap();
        // a and b are now the only admins.
        if let Some(previous) = survivor.take() {
            assert!(store.soft_delete(previous).await.unwrap());
        }
        // Demoting and deleting, in both combinations across rounds.
        let (first, second) = if round % 2 == 0 {
            tokio::join!(store.update_user(a.id, demote()), store.update_user(b.id, demote()))
        } else {
            let (x, y) = tokio::join!(store.soft_delete(a.id), store.soft_delete(b.id));
            (x.map(|done| done.then_some(a.clone())), y.map(|done| done.then_some(b.clone())))
        };
        let outcomes = [first.is_ok(), second.is_ok()];
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "round {round}: exactly one wins");
        for refused in [first, second].into_iter().filter_map(Result::err) {
            assert!(matches!(refused, StoreError::LastAdmin), "round {round}: {refused:?}");
        }
        let admins = [store.find_live(a.id).await.unwrap(), store.find_live(b.id).await.unwrap()]
            .into_iter()
            .flatten()
            .filter(|u| u.role == Role::Admin)
            .count();
        assert_eq!(admins, 1, "round {round}");
        let a_is_admin = store.find_live(a.id).await.unwrap().is_some_and(|u| u.role == Role::Admin);
        survivor = Some(if a_is_admin { a.id } else { b.id });
    }
}

mod events {
    //! Each change other services hear of is recorded in the outbox in its own transaction.
    use contracts::events::{EventData, UserDeleted, UserRegistered, UserRoleChanged};
    use kit::testing::{Backend, outbox_events};

    use super::{Role, StoreError, UserPatch, new_user, store};

    kit::on_both_backends!(
        registering_deleting_and_changing_a_role_each_record_their_event,
        a_refused_change_records_nothing
    );

    async fn registering_deleting_and_changing_a_role_each_record_their_event(backend: Backend) {
        let (store, _db) = store(backend).await;
        let user = store.create_user(new_user("ada@example.com")).await.unwrap();
        let admin = store.create_user(new_user("root@example.com")).await.unwrap();
        store
            .update_user(admin.id, UserPatch { role: Some(Role::Admin), ..UserPatch::default() })
            .await
            .unwrap();
        store
            .update_user(user.id, UserPatch { name: Some("Ada L.".into()), ..UserPatch::default() })
            .await
            .unwrap();
        assert!(store.soft_delete(user.id).await.unwrap());

        let events = outbox_events(store.connection()).await;
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [UserRegistered::TYPE, UserRegistered::TYPE, UserRoleChanged::TYPE, UserDeleted::TYPE],
            "a name change is no event"
        );
        let registered = events[0].decode::<UserRegistered>().unwrap().unwrap();
        assert_eq!((registered.data.user_id, registered.data.email.as_str()), (user.id, "ada@example.com"));
        assert_eq!(registered.source, "/mercato/users");
        let changed = events[2].decode::<UserRoleChanged>().unwrap().unwrap();
        assert_eq!(
            (changed.data.user_id, changed.data.previous_role.as_str(), changed.data.role.as_str()),
            (admin.id, "customer", "admin")
        );
        let deleted = events[3].decode::<UserDeleted>().unwrap().unwrap();
        assert_eq!(deleted.data.user_id, user.id);
        assert_eq!(deleted.subject, Some(user.id.to_string()));
    }

    async fn a_refused_change_records_nothing(backend: Backend) {
        let (store, _db) = store(backend).await;
        let admin = store.create_user(new_user("root@example.com")).await.unwrap();
        store
            .update_user(admin.id, UserPatch { role: Some(Role::Admin), ..UserPatch::default() })
            .await
            .unwrap();
        let before = outbox_events(store.connection()).await.len();
        let demote = UserPatch { role: Some(Role::Customer), ..UserPatch::default() };
        assert!(matches!(store.update_user(admin.id, demote).await, Err(StoreError::LastAdmin)));
        assert!(matches!(store.soft_delete(admin.id).await, Err(StoreError::LastAdmin)));
        assert!(matches!(store.create_user(new_user("ROOT@example.com")).await, Err(StoreError::EmailTaken)));
        assert_eq!(outbox_events(store.connection()).await.len(), before, "no change, no event");
    }
}
