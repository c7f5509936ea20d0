//! The demo catalog of `mercato up` gets a picture per product, drawn locally while the shop
//! already serves, with the narrower copies listings ask for (`?width=`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mercato::embedded::{EmbeddedOptions, Shop};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_products_get_pictures_served_at_every_listing_width() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        seed_demo: true,
        ..EmbeddedOptions::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let shop = Shop::start(options).await.unwrap();
    let base = format!("http://{}", shop.gateway);
    let http = reqwest::Client::new();
    // Pictures are drawn oldest product first; the first ones come within seconds.
    let started = Instant::now();
    let url = loop {
        let page: Value = http
            .get(format!("{base}/api/v1/products?limit=100&sort=name"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pictured = page["items"].as_array().unwrap().iter().find_map(|p| p["images"][0].as_str());
        if let Some(url) = pictured {
            break url.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no demo product has a picture yet");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (width, expected) in [(None, 640), (Some(160), 160), (Some(320), 320), (Some(640), 640)] {
        let path = match width {
            Some(width) => format!("{base}{url}?width={width}"),
            None => format!("{base}{url}"),
        };
        let response = http.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "image/png");
        let picture = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!((picture.width(), picture.height()), (expected, expected), "{path}");
    }
    shop.shutdown_token().cancel();
}
