//! Images on S3: the object-store adapter against a real S3-compatible server started here on
//! 127.0.0.1 (moto's `moto_server`, installed by `.ci/run` with `pip install 'moto[server]'`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use products::config::{ImageBackend, ImagesConfig, S3Config};
use products::domain::ImageKind;
use products::domain::image::ImageKey;
use products::store::ImageStore;

/// A moto S3 server on a free loopback port, stopped on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3() -> S3Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let program = std::env::var("MERCATO_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("`{program}` is needed for the S3 tests (pip install 'moto[server]'): {e}")
        });
    let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}") };
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

async fn bucket(server: &S3Server, name: &str) -> ImagesConfig {
    let created = reqwest::Client::new().put(format!("{}/{name}", server.endpoint)).send().await.unwrap();
    assert!(created.status().is_success(), "bucket creation: {}", created.status());
    ImagesConfig {
        backend: ImageBackend::S3,
        s3: S3Config {
            bucket: name.into(),
            region: "us-east-1".into(),
            endpoint: server.endpoint.clone(),
            path_style: true,
            allow_http: true,
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
        },
        ..ImagesConfig::default()
    }
}

#[tokio::test]
async fn images_round_trip_through_s3() {
    let server = start_s3();
    let config = bucket(&server, "mercato-images").await;
    let store = ImageStore::open(&config).unwrap();
    store.ping().await.unwrap();

    let jpeg = Bytes::from_static(b"\xFF\xD8\xFF\xE0 a very small jpeg body");
    let key = store.put(ImageKind::Jpeg, jpeg.clone()).await.unwrap();
    assert!(key.as_str().ends_with(".jpg"));
    let image = store.get(&key).await.unwrap().expect("stored");
    assert_eq!((image.kind, image.size), (ImageKind::Jpeg, jpeg.len() as u64));
    let mut body = Vec::new();
    let mut stream = image.body;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, jpeg.to_vec());
    let absent = ImageKey::parse(&format!("{}.jpg", "0".repeat(64))).unwrap();
    assert!(store.get(&absent).await.unwrap().is_none());
}

#[tokio::test]
async fn writing_to_a_missing_bucket_fails() {
    let server = start_s3();
    let mut config = bucket(&server, "exists").await;
    config.s3.bucket = "does-not-exist".into();
    let store = ImageStore::open(&config).unwrap();
    let put = store.put(ImageKind::Png, Bytes::from_static(b"\x89PNG\r\n\x1a\nbody")).await;
    assert!(put.is_err(), "writing to a missing bucket fails");
}

/// An image store that does not answer (S3 down, a bucket policy without ListBucket, a wrong
/// endpoint) takes the images away, not the catalog: `/readyz` stays 200 while the database
/// answers, and `products_image_store_up` says 0.
#[tokio::test]
async fn an_unreachable_image_store_leaves_the_catalog_ready_and_says_so() {
    use kit::testing::{Backend, TestAuth, TestDatabase};
    kit::telemetry::init("products-test");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let db = TestDatabase::new(Backend::Sqlite, "products_s3_down").await;
    let auth = TestAuth::start().await;
    let config = products::ProductsConfig {
        http: kit::config::HttpConfig::with_listen("127.0.0.1:0".parse().unwrap()),
        database: db.config.clone(),
        users_url: auth.url().to_owned(),
        images: ImagesConfig {
            backend: ImageBackend::S3,
            s3: S3Config {
                bucket: "nowhere".into(),
                region: "us-east-1".into(),
                endpoint: format!("http://127.0.0.1:{closed}"),
                path_style: true,
                allow_http: true,
                access_key_id: Some("testing".into()),
                secret_access_key: Some("testing".into()),
            },
            ..ImagesConfig::default()
        },
        ..products::ProductsConfig::default()
    };
    let app = products::Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    let _stop = shutdown.drop_guard();

    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{base}/api/v1/products")).send().await.unwrap().status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.lines().any(|l| l.starts_with("products_image_store_up") && l.ends_with(" 0")) {
            break;
        }
        assert!(Instant::now() < deadline, "no products_image_store_up 0 in:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
