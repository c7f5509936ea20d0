//! The catalog end to end through the gateway of the embedded shop: an admin creates a product
//! and uploads its image, which is then served; a customer lists, filters, searches and pages by
//! cursor; a soft-deleted product disappears.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::TestShop;
use mercato::embedded::Overrides;
use reqwest::Method;
use serde_json::{Value, json};

async fn start() -> TestShop {
    common::start(Overrides::default()).await
}

/// A real grey PNG of at least `size` bytes: uncompressed (stored deflate blocks), so its size
/// is about its pixels'. The products service decodes every upload.
fn png(size: usize) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[kind, data].concat()).to_be_bytes());
    }
    let width = 1024u32;
    let height = (size / (width as usize + 1) + 1) as u32;
    // Each scanline: filter type 0, then one grey byte per pixel.
    let raw: Vec<u8> =
        (0..height).flat_map(|_| std::iter::once(0).chain(std::iter::repeat_n(7, width as usize))).collect();
    let mut zlib = vec![0x78, 0x01];
    let blocks = raw.chunks(65_535).collect::<Vec<_>>();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (a, b) = raw.iter().fold((1u32, 0u32), |(a, b), byte| {
        let a = (a + u32::from(*byte)) % 65_521;
        (a, (b + a) % 65_521)
    });
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[tokio::test]
async fn admin_creates_a_product_and_its_image_is_served_through_the_gateway() {
    let t = start().await;
    let product = t.create_product("Framed Print", "Wall Art", 4500, 3).await;
    let id = product["id"].as_str().unwrap();
    // 2 MiB: more than the gateway's default body limit, within the upload route's.
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(png(2 * 1024 * 1024)).file_name("print.png"));
    let uploaded = t
        .http
        .post(format!("{}/api/v1/products/{id}/images", t.base))
        .bearer_auth(&t.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let url = uploaded.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let image = t.http.get(format!("{}{url}", t.base)).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(image.headers().contains_key("etag"));
    // Stored re-encoded (compressed, without metadata), so smaller than the upload.
    let served = image.bytes().await.unwrap();
    assert!(served.starts_with(b"\x89PNG\r\n\x1a\n") && served.len() < 2 * 1024 * 1024);
    assert_eq!(t.get(&format!("/api/v1/products/{id}")).await["images"], json!([url]));

    let too_big = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(png(7 * 1024 * 1024)).file_name("big.png"));
    let refused = t
        .http
        .post(format!("{}/api/v1/products/{id}/images", t.base))
        .bearer_auth(&t.admin)
        .multipart(too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
}

#[tokio::test]
async fn a_customer_lists_filters_searches_and_pages_by_cursor() {
    let t = start().await;
    for i in 0..12 {
        t.create_product(&format!("Camping Lantern {i}"), "Outdoor", 1000 + i, i % 4).await;
    }
    t.create_product("Trail Running Shoe", "Shoes", 8999, 5).await;

    let page: Value = t.get("/api/v1/products?limit=5&page=2").await;
    assert_eq!(
        (page["page"].as_u64(), page["total"].as_u64(), page["total_pages"].as_u64()),
        (Some(2), Some(13), Some(3))
    );
    let outdoor: Value =
        t.get("/api/v1/products?category=outdoor&in_stock=true&sort=price_desc&limit=100").await;
    let prices: Vec<i64> =
        outdoor["items"].as_array().unwrap().iter().map(|p| p["price"]["amount"].as_i64().unwrap()).collect();
    assert_eq!(prices.len(), 9);
    assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}");
    let found: Value = t.get("/api/v1/products?q=running%20shoes").await;
    assert_eq!(found["items"][0]["name"], "Trail Running Shoe");
    let categories: Value = t.get("/api/v1/categories").await;
    assert_eq!(categories.as_array().unwrap().len(), 2);

    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = t.get(&format!("/api/v1/products?limit=4&sort=name&cursor={cursor}")).await;
        names
            .extend(page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(names.len(), 13);
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    assert_eq!(t.send(Method::GET, "/api/v1/products?limit=1000", None, None).await.status(), 400);
}

#[tokio::test]
async fn a_soft_deleted_product_disappears_and_answers_404() {
    let t = start().await;
    let product = t.create_product("Discontinued Kettle", "Kitchen", 2000, 1).await;
    let id = product["id"].as_str().unwrap();
    assert_eq!(
        t.send(Method::DELETE, &format!("/api/v1/products/{id}"), None, Some(&t.admin)).await.status(),
        204
    );
    assert_eq!(t.send(Method::GET, &format!("/api/v1/products/{id}"), None, None).await.status(), 404);
    assert_eq!(t.get("/api/v1/products").await["total"], 0);
    assert_eq!(t.get("/api/v1/products?q=kettle").await["total"], 0);
    let sku = product["sku"].as_str().unwrap();
    assert_eq!(t.send(Method::GET, &format!("/api/v1/products/sku/{sku}"), None, None).await.status(), 404);
}
