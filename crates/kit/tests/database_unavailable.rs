//! A database connection that the server ends (a restart, a failover, an admin) is the
//! service's 503, not its 500: the request may be retried once the database is back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use http::StatusCode;
use kit::ApiError;
use kit::testing::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn a_connection_terminated_by_postgresql_answers_503() {
    let db = TestDatabase::new(Backend::Postgres, "terminated").await;
    let pool = kit::db::connect(&db.config).await.unwrap();
    // SQLSTATE 57P01, "terminating connection due to administrator command": what every
    // connection gets when PostgreSQL shuts down or restarts.
    let err = pool.execute_unprepared("SELECT pg_terminate_backend(pg_backend_pid())").await.unwrap_err();
    assert_eq!(ApiError::from(err).status(), StatusCode::SERVICE_UNAVAILABLE);
    pool.close().await.unwrap();
}
