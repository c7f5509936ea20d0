//! The products service through its real router on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

mod common;

use common::{problem, product, spawn_app};
use kit::testing::Backend;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_creates_and_anyone_reads() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Copper Kettle", 4999, 7)).await;
    assert_eq!(created["price"], json!({"amount": 4999, "currency": "USD"}));
    assert_eq!(created["category"], "kitchen");
    assert!(created["sku"].as_str().unwrap().starts_with("KIT-ACM-"));
    assert_eq!(created["images"], json!([]));
    let id = created["id"].as_str().unwrap();
    let read: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(read["name"], "Copper Kettle");
    let by_sku: Value = app
        .get(&format!("/api/v1/products/sku/{}", created["sku"].as_str().unwrap().to_lowercase()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_sku["id"], id);
}

#[tokio::test]
async fn customers_get_403_and_strangers_401_on_admin_routes() {
    let app = spawn_app(Backend::Sqlite).await;
    let customer = app.customer_token("ada@example.com").await;
    problem(app.send(Method::POST, "/api/v1/products", Some(product("X", 1, 1)), Some(&customer)).await, 403)
        .await;
    problem(app.send(Method::POST, "/api/v1/products", Some(product("X", 1, 1)), None).await, 401).await;
    problem(app.send(Method::GET, "/api/v1/products/low-stock", None, Some(&customer)).await, 403).await;
    problem(
        app.send(Method::POST, "/internal/v1/products/lookup", Some(json!({"ids": []})), Some(&customer))
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn bad_product_input_is_a_clear_400_and_duplicate_sku_409() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut bad = product("", -5, -1);
    bad["price"]["currency"] = json!("EUR");
    let body =
        problem(app.send(Method::POST, "/api/v1/products", Some(bad), Some(&app.admin)).await, 400).await;
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "price", "stock"]);

    let mut float_price = product("Float", 0, 1);
    float_price["price"]["amount"] = json!(19.99);
    let body =
        problem(app.send(Method::POST, "/api/v1/products", Some(float_price), Some(&app.admin)).await, 400)
            .await;
    assert_eq!(body["errors"][0]["field"], "price.amount");

    let mut unknown = product("Unknown", 100, 1);
    unknown["colour"] = json!("red");
    problem(app.send(Method::POST, "/api/v1/products", Some(unknown), Some(&app.admin)).await, 400).await;

    let mut with_sku = product("Has SKU", 100, 1);
    with_sku["sku"] = json!("DUP-1");
    app.create(with_sku.clone()).await;
    problem(app.send(Method::POST, "/api/v1/products", Some(with_sku), Some(&app.admin)).await, 409).await;
}

#[tokio::test]
async fn patch_validates_and_delete_hides() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Teapot", 2500, 3)).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let patched =
        app.send(Method::PATCH, &path, Some(json!({"stock": 9, "brand": null})), Some(&app.admin)).await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!((patched["stock"].as_i64(), patched["brand"].is_null()), (Some(9), true));
    problem(app.send(Method::PATCH, &path, Some(json!({})), Some(&app.admin)).await, 400).await;
    problem(app.send(Method::PATCH, &path, Some(json!([null, null])), Some(&app.admin)).await, 400).await;
    problem(app.send(Method::PATCH, &path, Some(json!({"stock": -1})), Some(&app.admin)).await, 400).await;

    assert_eq!(app.send(Method::DELETE, &path, None, Some(&app.admin)).await.status(), 204);
    problem(app.get(&path).await, 404).await;
    let list: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(list["total"], 0);
    problem(app.get("/api/v1/products/not-a-uuid").await, 400).await;
}

#[tokio::test]
async fn whole_numbers_written_with_a_decimal_point_are_accepted() {
    // JSON Schema's `integer` counts 4999.0 as one, so the document's integers must accept it.
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = product("Oak Board", 0, 0);
    body["price"]["amount"] = json!(4999.0);
    body["stock"] = json!(5.0);
    body["weight_grams"] = json!(800.0);
    let created = app.create(body).await;
    assert_eq!(
        (&created["price"]["amount"], &created["stock"], &created["weight_grams"]),
        (&json!(4999), &json!(5), &json!(800))
    );
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let patched = app.send(Method::PATCH, &path, Some(json!({"stock": 7.0})), Some(&app.admin)).await;
    assert_eq!(patched.json::<Value>().await.unwrap()["stock"], 7);

    let mut fraction = product("Half", 0, 0);
    fraction["stock"] = json!(2.5);
    let body =
        problem(app.send(Method::POST, "/api/v1/products", Some(fraction), Some(&app.admin)).await, 400)
            .await;
    assert_eq!(body["errors"][0]["field"], "stock");
}

#[tokio::test]
async fn a_patch_of_nulls_keeps_every_field() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Teapot", 2500, 3)).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let kept = app
        .send(
            Method::PATCH,
            &path,
            Some(json!({"price": null, "name": null, "stock": null})),
            Some(&app.admin),
        )
        .await;
    assert_eq!(kept.status(), 200);
    assert_eq!(kept.json::<Value>().await.unwrap(), created, "nothing changed, not even updated_at");
}

#[tokio::test]
async fn lists_page_filter_search_and_cursor() {
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..25 {
        app.create(product(&format!("Mug {i:02}"), 1000 + i, i % 3)).await;
    }
    app.create(product("Trail Running Shoe", 8999, 4)).await;
    let page: Value = app.get("/api/v1/products?page=2&limit=10").await.json().await.unwrap();
    assert_eq!(
        (page["page"].as_u64(), page["limit"].as_u64(), page["total"].as_u64(), page["total_pages"].as_u64()),
        (Some(2), Some(10), Some(26), Some(3))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 10);

    let found: Value = app.get("/api/v1/products?q=running%20shoes").await.json().await.unwrap();
    assert_eq!(found["items"][0]["name"], "Trail Running Shoe");
    let filtered: Value =
        app.get("/api/v1/products?in_stock=false&sort=price_asc").await.json().await.unwrap();
    assert!(filtered["items"].as_array().unwrap().iter().all(|p| p["stock"] == 0));
    // No document can say "max_price ≥ min_price"; an empty range is simply a list of nothing.
    let inverted = app.get("/api/v1/products?min_price=1020&max_price=1010").await;
    assert_eq!(inverted.status(), 200);
    assert_eq!(inverted.json::<Value>().await.unwrap()["total"], 0);

    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(&format!("/api/v1/products?limit=7&sort=price_desc&cursor={cursor}"))
            .await
            .json()
            .await
            .unwrap();
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
        assert!(page.get("total").is_none());
    }
    assert_eq!(seen, 26);

    problem(app.get("/api/v1/products?limit=101").await, 400).await;
    problem(app.get("/api/v1/products?page=0").await, 400).await;
    problem(app.get("/api/v1/products?cursor=garbage").await, 400).await;
    problem(app.get("/api/v1/products?sort=random").await, 400).await;
    let newest: Value = app.get("/api/v1/products?limit=1&cursor=").await.json().await.unwrap();
    let cursor = newest["next_cursor"].as_str().unwrap();
    problem(app.get(&format!("/api/v1/products?sort=name&cursor={cursor}")).await, 400).await;
}

#[tokio::test]
async fn hostile_search_text_never_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create(product("Plain Mug", 500, 1)).await;
    for q in [
        "%22unbalanced",
        "a%20%26%20b%20%7C%20!c",
        "'%20OR%201%3D1%20--",
        "%F0%9F%8E%89",
        "(((",
        "*",
        &"x".repeat(500),
    ] {
        let response = app.get(&format!("/api/v1/products?q={q}")).await;
        assert_eq!(response.status(), 200, "q={q}");
    }
}

#[tokio::test]
async fn categories_and_low_stock() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create(product("Low", 100, 1)).await;
    app.create(json!({"name": "Tent", "description": "Sleeps two.", "price": {"amount": 20000, "currency": "USD"}, "category": "Outdoor Gear", "stock": 50})).await;
    let categories: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(
        categories,
        json!([{"slug": "kitchen", "name": "Kitchen", "product_count": 1}, {"slug": "outdoor-gear", "name": "Outdoor Gear", "product_count": 1}])
    );
    let low: Value = app
        .send(Method::GET, "/api/v1/products/low-stock?threshold=5", None, Some(&app.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(low["total"], 1);
    assert_eq!(low["items"][0]["name"], "Low");
}

/// A real `format` image of 40×30 pixels.
fn picture(format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels).write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn png() -> Vec<u8> {
    picture(image::ImageFormat::Png)
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry.
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

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&[&kind[..], data].concat()).to_be_bytes());
    chunk
}

/// A well-formed PNG whose header claims `width`×`height` RGBA pixels (a decompression bomb
/// needs only a few bytes of data to claim that).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(png_chunk(b"IHDR", &header));
    // A zlib stream of an empty stored block.
    bytes.extend(png_chunk(b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]));
    bytes.extend(png_chunk(b"IEND", &[]));
    bytes
}

/// A JPEG with an EXIF segment holding a GPS position, inserted right after its start marker.
fn jpeg_with_gps() -> Vec<u8> {
    let jpeg = picture(image::ImageFormat::Jpeg);
    // TIFF, big-endian: IFD0 with one entry (GPSInfo → IFD at 26), GPS IFD with GPSLatitudeRef "N".
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 1, 0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0, 0, 0, 0, 0]);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let mut bytes = jpeg[..2].to_vec();
    bytes.extend_from_slice(&[0xFF, 0xE1]);
    bytes.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
    bytes.extend(segment);
    bytes.extend_from_slice(&jpeg[2..]);
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn upload(app: &common::TestApp, id: &str, bytes: Vec<u8>, token: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(bytes)
            .file_name("x.bin")
            .mime_str("application/octet-stream")
            .unwrap(),
    );
    app.http
        .post(app.url(&format!("/api/v1/products/{id}/images")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn images_upload_by_content_and_serve_with_cache_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Framed Print", 3000, 2)).await;
    let id = created["id"].as_str().unwrap();
    let uploaded = upload(&app, id, png(), &app.admin).await;
    assert_eq!(uploaded.status(), 201);
    let url = uploaded.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/api/v1/images/") && url.ends_with(".png"), "{url}");

    let image = app.get(&url).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(image.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let etag = image.headers()["etag"].to_str().unwrap().to_owned();
    let served = image::load_from_memory_with_format(&image.bytes().await.unwrap(), image::ImageFormat::Png);
    assert_eq!(
        served.unwrap().to_rgb8(),
        image::load_from_memory(&png()).unwrap().to_rgb8(),
        "PNG is lossless"
    );
    let again = app.http.get(app.url(&url)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);

    let product: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(product["images"], json!([url]));
    // The internal lookup (what a cart shows) names the first image by the same URL.
    let lookup: Value = app
        .send(Method::POST, "/internal/v1/products/lookup", Some(json!({"ids": [id]})), Some(&app.service))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lookup["items"][0]["image"], json!(url));

    problem(upload(&app, id, b"GIF89a not allowed".to_vec(), &app.admin).await, 415).await;
    problem(upload(&app, id, vec![0xFF; 6 * 1024 * 1024], &app.admin).await, 413).await;
    let customer = app.customer_token("ada@example.com").await;
    problem(upload(&app, id, png(), &customer).await, 403).await;
    problem(upload(&app, &uuid::Uuid::now_v7().to_string(), png(), &app.admin).await, 404).await;
    problem(app.get("/api/v1/images/..%2F..%2Fetc%2Fpasswd").await, 404).await;
}

/// Narrower copies are made at upload and served by `?width=` (for `srcset`): the narrowest
/// copy at least that wide, the image itself when it is narrower, each with an ETag of its own;
/// a width outside 1–10000 is a 400.
#[tokio::test]
async fn an_upload_is_served_at_each_listing_width_it_is_wider_than() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = app.create(product("Wide Poster", 4000, 2)).await["id"].as_str().unwrap().to_owned();
    let pixels =
        image::RgbImage::from_fn(400, 200, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut wide = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels).write_to(&mut wide, image::ImageFormat::Jpeg).unwrap();
    let uploaded = upload(&app, &id, wide.into_inner(), &app.admin).await;
    assert_eq!(uploaded.status(), 201);
    let url = uploaded.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();

    let mut etags = std::collections::HashSet::new();
    for (width, served_width, served_height) in [(160, 160, 80), (320, 320, 160), (640, 400, 200)] {
        let image = app.get(&format!("{url}?width={width}")).await;
        assert_eq!(image.status(), 200, "width {width}");
        assert_eq!(image.headers()["content-type"], "image/jpeg");
        etags.insert(image.headers()["etag"].to_str().unwrap().to_owned());
        let served = image::load_from_memory(&image.bytes().await.unwrap()).unwrap();
        assert_eq!((served.width(), served.height()), (served_width, served_height), "width {width}");
    }
    etags.insert(app.get(&url).await.headers()["etag"].to_str().unwrap().to_owned());
    assert_eq!(etags.len(), 4, "each width is cached apart");
    // Another width gets the narrowest copy at least that wide, or the image itself.
    let between =
        image::load_from_memory(&app.get(&format!("{url}?width=200")).await.bytes().await.unwrap()).unwrap();
    assert_eq!(between.width(), 320);
    let wider =
        image::load_from_memory(&app.get(&format!("{url}?width=2000")).await.bytes().await.unwrap()).unwrap();
    assert_eq!(wider.width(), 400);
    problem(app.get(&format!("{url}?width=0")).await, 400).await;
    problem(app.get(&format!("{url}?width=10001")).await, 400).await;
    problem(app.get(&format!("{url}?size=160")).await, 400).await;
}

#[tokio::test]
async fn an_upload_carries_one_image_field_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = app.create(product("Framed Print", 3000, 2)).await["id"].as_str().unwrap().to_owned();
    let send = |form: reqwest::multipart::Form| {
        app.http
            .post(app.url(&format!("/api/v1/products/{id}/images")))
            .bearer_auth(&app.admin)
            .multipart(form)
            .send()
    };
    let image = || reqwest::multipart::Part::bytes(png()).file_name("x.png");
    let extra = reqwest::multipart::Form::new().text("note", "hello").part("image", image());
    let body = problem(send(extra).await.unwrap(), 400).await;
    assert_eq!(body["errors"][0]["field"], "note");
    let twice = reqwest::multipart::Form::new().part("image", image()).part("image", image());
    let body = problem(send(twice).await.unwrap(), 400).await;
    assert_eq!(body["errors"][0]["field"], "image");
    let product: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(product["images"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn each_accepted_format_is_served_back_decodable() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Poster", 1500, 2)).await;
    let id = created["id"].as_str().unwrap();
    for (format, content_type) in [
        (image::ImageFormat::Jpeg, "image/jpeg"),
        (image::ImageFormat::Png, "image/png"),
        (image::ImageFormat::WebP, "image/webp"),
    ] {
        let uploaded = upload(&app, id, picture(format), &app.admin).await;
        assert_eq!(uploaded.status(), 201, "{format:?}");
        let url = uploaded.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
        let served = app.get(&url).await;
        assert_eq!(served.headers()["content-type"], content_type);
        let decoded = image::load_from_memory_with_format(&served.bytes().await.unwrap(), format).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (40, 30), "{format:?}");
    }
}

#[tokio::test]
async fn images_that_are_not_only_an_image_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Poster", 1500, 2)).await;
    let id = created["id"].as_str().unwrap();
    let html = b"<html><script>alert(document.cookie)</script></html>";

    let polyglot = [png(), html.to_vec()].concat();
    let body = problem(upload(&app, id, polyglot, &app.admin).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("after the end of the image"), "{body}");
    for format in [image::ImageFormat::Jpeg, image::ImageFormat::WebP] {
        let trailing = [picture(format), b"trailing".to_vec()].concat();
        problem(upload(&app, id, trailing, &app.admin).await, 422).await;
    }
    // A PNG signature followed by HTML is no PNG.
    let signature_then_html = [&b"\x89PNG\r\n\x1a\n"[..], html].concat();
    problem(upload(&app, id, signature_then_html, &app.admin).await, 422).await;
    let truncated = png()[..60].to_vec();
    problem(upload(&app, id, truncated, &app.admin).await, 422).await;

    let product: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(product["images"], json!([]), "nothing refused was stored");
}

#[tokio::test]
async fn decompression_bombs_are_refused_from_their_header() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Poster", 1500, 2)).await;
    let id = created["id"].as_str().unwrap();
    // 100,000 × 100,000 RGBA would be 40 GB: refused before any pixel buffer exists.
    for (width, height) in [(100_000, 100_000), (20_000, 20_000), (60_000, 1)] {
        let body = problem(upload(&app, id, png_claiming(width, height), &app.admin).await, 422).await;
        assert!(body["detail"].as_str().unwrap().contains("pixels"), "{width}×{height}: {body}");
    }
}

#[tokio::test]
async fn uploaded_images_lose_their_exif_location() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Poster", 1500, 2)).await;
    let id = created["id"].as_str().unwrap();
    let original = jpeg_with_gps();
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(&original))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    assert!(image::ImageDecoder::exif_metadata(&mut decoder).unwrap().is_some(), "the upload has EXIF");

    drop(decoder);
    let uploaded = upload(&app, id, original, &app.admin).await;
    assert_eq!(uploaded.status(), 201);
    let url = uploaded.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let served = app.get(&url).await.bytes().await.unwrap().to_vec();
    assert!(!contains(&served, b"Exif\0\0") && !contains(&served, &[0xFF, 0xE1]), "no EXIF segment remains");
    let mut decoder =
        image::ImageReader::with_format(std::io::Cursor::new(&served), image::ImageFormat::Jpeg)
            .into_decoder()
            .unwrap();
    assert!(image::ImageDecoder::exif_metadata(&mut decoder).unwrap().is_none());
}

#[tokio::test]
async fn reservations_through_the_internal_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(product("Scarce Thing", 1500, 3)).await;
    let id = created["id"].as_str().unwrap();
    let order = uuid::Uuid::now_v7();
    let reserve = json!({"order_id": order, "items": [{"product_id": id, "quantity": 2}]});

    let held =
        app.send(Method::POST, "/internal/v1/reservations", Some(reserve.clone()), Some(&app.service)).await;
    assert_eq!(held.status(), 201);
    let replay =
        app.send(Method::POST, "/internal/v1/reservations", Some(reserve.clone()), Some(&app.service)).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap()["status"], "held");

    let greedy = json!({"order_id": uuid::Uuid::now_v7(), "items": [{"product_id": id, "quantity": 2}]});
    let short = problem(
        app.send(Method::POST, "/internal/v1/reservations", Some(greedy), Some(&app.service)).await,
        409,
    )
    .await;
    assert_eq!(short["reason"], "short");
    assert_eq!(short["short"], json!([{"product_id": id, "requested": 2, "available": 1}]));

    let lookup: Value = app
        .send(
            Method::POST,
            "/internal/v1/products/lookup",
            Some(json!({"ids": [id, uuid::Uuid::nil()]})),
            Some(&app.service),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lookup["items"][0]["price"]["amount"], 1500);
    assert_eq!(lookup["items"][0]["image"], Value::Null, "no image uploaded");
    assert_eq!(lookup["missing"], json!([uuid::Uuid::nil()]));
    let held: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(held["stock"], 1, "two of three units are held");

    let release_path = format!("/internal/v1/reservations/{order}/release");
    let first: Value =
        app.send(Method::POST, &release_path, None, Some(&app.service)).await.json().await.unwrap();
    let second: Value =
        app.send(Method::POST, &release_path, None, Some(&app.service)).await.json().await.unwrap();
    assert_eq!(
        (first["released_now"].as_bool(), second["released_now"].as_bool()),
        (Some(true), Some(false))
    );
    let after: Value = app.get(&format!("/api/v1/products/{id}")).await.json().await.unwrap();
    assert_eq!(after["stock"], 3);
    let late = problem(
        app.send(Method::POST, "/internal/v1/reservations", Some(reserve.clone()), Some(&app.service)).await,
        409,
    )
    .await;
    assert_eq!(late["reason"], "released", "a released order's reservation is not taken again: {late}");

    problem(
        app.send(
            Method::POST,
            "/internal/v1/reservations",
            Some(json!({"order_id": order, "items": [{"product_id": id, "quantity": 0}]})),
            Some(&app.service),
        )
        .await,
        400,
    )
    .await;
    problem(app.send(Method::POST, "/internal/v1/reservations", Some(reserve), Some(&app.admin)).await, 403)
        .await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let openapi: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(openapi["paths"]["/api/v1/products"]["get"].is_object());
    assert!(openapi["paths"]["/api/v1/products/{id}/images"]["post"].is_object());
}

#[tokio::test]
async fn catalog_flow_works_on_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    app.create(product("Cast Iron Pan", 3999, 5)).await;
    app.create(product("Steel Pan", 2999, 0)).await;
    let found: Value = app.get("/api/v1/products?q=pans&in_stock=true").await.json().await.unwrap();
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["name"], "Cast Iron Pan");
}

/// The field a 400 problem names.
async fn bad_field(response: reqwest::Response) -> String {
    let body = problem(response, 400).await;
    body["errors"][0]["field"].as_str().unwrap_or_default().to_owned()
}

const TOO_DEEP: [&str; 3] = [
    "page=9223372036854775807",
    // (page − 1) × limit overflows 64 bits.
    "page=200000000000000000&limit=100",
    // Fits in 64 bits, but no database should skip that many rows.
    "page=10000001&limit=100",
];

async fn huge_pages_are_400_naming_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create(product("Plain Mug", 500, 1)).await;
    for deep in TOO_DEEP {
        for list in ["/api/v1/products?", "/api/v1/products?q=mug&", "/api/v1/products?sort=name&"] {
            assert_eq!(bad_field(app.get(&format!("{list}{deep}")).await).await, "page", "{list}{deep}");
        }
        let low = app
            .send(Method::GET, &format!("/api/v1/products/low-stock?{deep}"), None, Some(&app.admin))
            .await;
        assert_eq!(bad_field(low).await, "page", "low-stock {deep}");
    }
    // The deepest page allowed still answers (empty).
    let deepest: Value = app.get("/api/v1/products?page=10001&limit=100").await.json().await.unwrap();
    assert_eq!(deepest["items"], json!([]));
}

#[tokio::test]
async fn huge_pages_are_400_naming_the_page_on_sqlite() {
    huge_pages_are_400_naming_the_page(Backend::Sqlite).await;
}

#[tokio::test]
async fn huge_pages_are_400_naming_the_page_on_postgres() {
    huge_pages_are_400_naming_the_page(Backend::Postgres).await;
}

async fn forged_cursors_are_400_naming_the_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..3 {
        app.create(product(&format!("Mug {i}"), 500 + i, 1)).await;
    }
    let id = "0190f0a0-0000-7000-8000-000000000000";
    let forged = [
        ("q=mug&", json!({"s": "relevance", "offset": u64::MAX})),
        ("q=mug&", json!({"s": "relevance", "offset": i64::MAX})),
        ("q=mug&", json!({"s": "relevance", "offset": 1_000_001})),
        ("q=mug&", json!({"s": "relevance", "offset": -1})),
        ("", json!({"s": "newest", "at": i64::MAX, "id": id})),
        ("", json!({"s": "newest", "at": i64::MIN, "id": id})),
        ("sort=price_asc&", json!({"s": "price_asc", "price": -1, "id": id})),
        ("sort=rating&", json!({"s": "rating", "rating": 1e308, "id": id})),
        ("sort=name&", json!({"s": "name", "name": "Mug\u{0}", "id": id})),
        ("sort=name&", json!({"s": "name", "name": "M".repeat(600), "id": id})),
        ("sort=name&", json!({"s": "name", "name": "Mug", "id": "not-a-uuid"})),
    ];
    for (filter, key) in forged {
        let cursor = kit::pagination::encode_cursor(&key);
        let response = app.get(&format!("/api/v1/products?{filter}limit=2&cursor={cursor}")).await;
        assert_eq!(bad_field(response).await, "cursor", "{filter}{key}");
    }
    // A cursor the list gave out still works.
    let first: Value = app.get("/api/v1/products?q=mug&limit=2&cursor=").await.json().await.unwrap();
    let next = first["next_cursor"].as_str().unwrap();
    let second: Value =
        app.get(&format!("/api/v1/products?q=mug&limit=2&cursor={next}")).await.json().await.unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn forged_cursors_are_400_naming_the_cursor_on_sqlite() {
    forged_cursors_are_400_naming_the_cursor(Backend::Sqlite).await;
}

#[tokio::test]
async fn forged_cursors_are_400_naming_the_cursor_on_postgres() {
    forged_cursors_are_400_naming_the_cursor(Backend::Postgres).await;
}

/// PostgreSQL refuses NUL in text where SQLite stores it; either way it is the client's 400.
async fn nul_bytes_in_filters_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create(product("Plain Mug", 500, 1)).await;
    for filter in ["brand=Ac%00me", "category=Kit%00chen"] {
        let field = filter.split('=').next().unwrap();
        assert_eq!(bad_field(app.get(&format!("/api/v1/products?{filter}")).await).await, field, "{filter}");
    }
    // Search text keeps letters and digits only, so a NUL there is simply ignored.
    assert_eq!(app.get("/api/v1/products?q=mug%00").await.status(), 200);
}

#[tokio::test]
async fn nul_bytes_in_filters_are_400_on_sqlite() {
    nul_bytes_in_filters_are_400(Backend::Sqlite).await;
}

#[tokio::test]
async fn nul_bytes_in_filters_are_400_on_postgres() {
    nul_bytes_in_filters_are_400(Backend::Postgres).await;
}
