//! Product images: upload (admin, multipart field `image`, JPEG/PNG/WebP by content, ≤ 5 MiB,
//! decoded and re-encoded without metadata) and download with content type, `ETag` and
//! long-lived caching (keys are content hashes).

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use kit::auth::AdminUser;
use kit::error::{PROBLEM_JSON, ProblemBody};
use kit::extract::{Path, Query};
use kit::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::images::ImageError;
use crate::domain::image::{ImageKey, ImageProblem, MAX_IMAGE_BYTES, VARIANT_WIDTHS};
use crate::state::AppState;

/// A multipart body carries headers around the image.
const UPLOAD_BODY_LIMIT: usize = MAX_IMAGE_BYTES + 1024 * 1024;

/// The image routes; the upload route accepts bodies up to the image limit plus multipart framing.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_image))
        .layer(kit::http::body_limit(UPLOAD_BODY_LIMIT))
        .routes(routes!(get_image))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UploadedImage {
    /// Where the image is served.
    url: String,
}

/// The multipart body of an upload: the `image` field and no other.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read field by field from the multipart stream; declared for the document
pub(crate) struct ImageUpload {
    /// A JPEG, PNG or WebP of at most 5 MiB, recognised by its bytes.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    image: Vec<u8>,
}

impl From<ImageError> for ApiError {
    fn from(err: ImageError) -> Self {
        match err {
            ImageError::NoSuchProduct => ApiError::not_found("no such product"),
            ImageError::Unacceptable(problem @ ImageProblem::UnknownFormat) => {
                ApiError::unsupported_media_type(format!("the `image` field {problem}"))
            }
            ImageError::Unacceptable(problem) => {
                ApiError::unprocessable(format!("the `image` field {problem}"))
            }
            ImageError::Storage(e) => ApiError::unavailable(format!("image store: {e}")),
            ImageError::Decoding(reason) => {
                ApiError::internal(anyhow::anyhow!("decoding an image: {reason}"))
            }
            ImageError::Store(store) => store.into(),
        }
    }
}

/// Adds an image to a product. The format is recognised from the bytes, not the declared type;
/// the image is decoded (at most 10,000 pixels a side, 40 million in all), must end where its
/// format says, and is stored re-encoded, without EXIF/XMP metadata.
#[utoipa::path(post, path = "/api/v1/products/{id}/images", tag = "images", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = ImageUpload, content_type = "multipart/form-data", description = "field `image`: a JPEG, PNG or WebP of at most 5 MiB"),
    responses((status = 201, body = UploadedImage),
        (status = 400, description = "no `image` field, a malformed multipart body, or the id is not a UUID", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 401, description = "not signed in", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 403, description = "not an admin", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "no such product", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 413, description = "larger than 5 MiB", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 415, description = "not multipart, or not a JPEG, PNG or WebP", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 422, description = "a broken image, one with data after its end, or too many pixels", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 503, description = "the image store is not reachable", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn upload_image(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<Uuid>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let mut multipart = multipart
        .map_err(|e| ApiError::unsupported_media_type(format!("expected multipart/form-data: {e}")))?;
    let bytes = read_image_field(&mut multipart).await?;
    let key = state.images.upload(id, bytes).await?;
    tracing::info!(admin_id = %admin.id, product_id = %id, %key, "image uploaded");
    let url = format!("{}/{key}", state.image_path);
    Ok((StatusCode::CREATED, [(header::LOCATION, url.clone())], axum::Json(UploadedImage { url }))
        .into_response())
}

/// The bytes of the one `image` field, refusing more than [`MAX_IMAGE_BYTES`] and any other
/// field (the body is read to its end, so a field after the image is refused too).
async fn read_image_field(multipart: &mut Multipart) -> ApiResult<Bytes> {
    let mut image = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("image") if image.is_some() => {
                return Err(ApiError::invalid_field("image", "is sent twice: upload one image at a time"));
            }
            Some("image") => {}
            other => {
                let name = other.unwrap_or_default().to_owned();
                return Err(ApiError::invalid_field(name, "is not a field of an upload: send only `image`"));
            }
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(ApiError::payload_too_large(Some(MAX_IMAGE_BYTES)));
            }
            bytes.extend_from_slice(&chunk);
        }
        image = Some(bytes.freeze());
    }
    image.ok_or_else(|| {
        ApiError::invalid_field("image", "is required: send the file in a multipart field named `image`")
    })
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(Some(MAX_IMAGE_BYTES))
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", err.body_text()))
    }
}

/// `?width=` of an image: one of the widths copies are made at.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageQuery {
    /// The width wanted, in pixels: the narrowest copy at least that wide (copies are 160, 320
    /// and 640 pixels wide; `srcset` names them exactly), or the image itself when none is.
    /// Absent: the image as uploaded (cleaned).
    #[param(minimum = 1, maximum = 10000)]
    width: Option<u32>,
}

/// An image's bytes, or a narrower copy of it, cacheable forever (its key is its content hash).
#[utoipa::path(get, path = "/api/v1/images/{key}", tag = "images", params(("key" = String, Path), ImageQuery),
    responses((status = 200, description = "the image", content_type = "image/*"), (status = 304, description = "unchanged"),
        (status = 400, description = "a width below 1 or above 10000", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 404, description = "no such image", body = ProblemBody, content_type = PROBLEM_JSON),
        (status = 503, description = "the image store is not reachable", body = ProblemBody, content_type = PROBLEM_JSON)))]
pub(crate) async fn get_image(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<ImageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    const NO_SUCH_IMAGE: &str = "no such image";
    if query.width.is_some_and(|width| !(1..=10_000).contains(&width)) {
        return Err(ApiError::invalid_field("width", "must be between 1 and 10000"));
    }
    // The narrowest copy at least as wide as asked; wider than every copy: the image itself.
    let width = query.width.and_then(|asked| VARIANT_WIDTHS.into_iter().find(|w| *w >= asked));
    let key = ImageKey::parse(&key).ok_or_else(|| ApiError::not_found(NO_SUCH_IMAGE))?;
    let etag = match width {
        Some(width) => format!("\"{}-w{width}\"", key.hash()),
        None => format!("\"{}\"", key.hash()),
    };
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)], [(header::CACHE_CONTROL, cache)])
            .into_response());
    }
    let image = state.images.image(&key, width).await?.ok_or_else(|| ApiError::not_found(NO_SUCH_IMAGE))?;
    let mut response = Body::from_stream(image.body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(image.kind.content_type()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(image.size));
    h.insert(header::CACHE_CONTROL, cache);
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    Ok(response)
}
