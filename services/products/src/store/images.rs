//! Product images in an object store ([`ImageStore`]): a local directory on the embedded
//! default, S3 (or any S3-compatible store) in production, behind `object_store`'s one API.
//! Keys are the SHA-256 of the content plus its extension ([`ImageKey`]), so an image is stored
//! once and can be cached forever.

use std::sync::Arc;

use aws_lc_rs::digest;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::{ImageBackend, ImagesConfig};
use crate::domain::ImageKind;
use crate::domain::image::ImageKey;

/// The image store of the products service.
#[derive(Clone)]
pub struct ImageStore {
    store: Arc<dyn ObjectStore>,
}

/// Where the copy of `key` that is `width` pixels wide is stored: `w<width>/<key>`.
fn variant_path(key: &ImageKey, width: u32) -> Path {
    Path::from(format!("w{width}/{}", key.as_str()))
}

/// A stored image being read.
pub struct StoredImage {
    pub kind: ImageKind,
    pub size: u64,
    pub body: BoxStream<'static, object_store::Result<Bytes>>,
}

impl ImageStore {
    /// Opens the configured backend (creating the local directory if needed).
    pub fn open(config: &ImagesConfig) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match config.backend {
            ImageBackend::Local => {
                std::fs::create_dir_all(&config.local_dir).map_err(|e| {
                    anyhow::anyhow!("cannot create images.local_dir {}: {e}", config.local_dir.display())
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&config.local_dir)?)
            }
            ImageBackend::S3 => {
                let s3 = &config.s3;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_virtual_hosted_style_request(!s3.path_style)
                    .with_allow_http(s3.allow_http);
                if !s3.region.is_empty() {
                    builder = builder.with_region(&s3.region);
                }
                if !s3.endpoint.is_empty() {
                    builder = builder.with_endpoint(&s3.endpoint);
                }
                if let Some(id) = &s3.access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { store })
    }

    /// Stores image bytes of a known kind and answers their key.
    pub async fn put(&self, kind: ImageKind, bytes: Bytes) -> object_store::Result<ImageKey> {
        let key = ImageKey::for_content(kind, digest::digest(&digest::SHA256, &bytes).as_ref());
        self.store.put(&Path::from(key.as_str()), PutPayload::from_bytes(bytes)).await?;
        Ok(key)
    }

    /// Stores the copy of the image under `key` that is `width` pixels wide.
    pub async fn put_variant(&self, key: &ImageKey, width: u32, bytes: Bytes) -> object_store::Result<()> {
        self.store.put(&variant_path(key, width), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// Opens the copy of `key` that is `width` pixels wide; `Ok(None)` when there is none (the
    /// image is narrower, or was stored before copies were made).
    pub async fn get_variant(&self, key: &ImageKey, width: u32) -> object_store::Result<Option<StoredImage>> {
        self.read(key, &variant_path(key, width)).await
    }

    /// Opens a stored image; `Ok(None)` when there is none under `key`.
    pub async fn get(&self, key: &ImageKey) -> object_store::Result<Option<StoredImage>> {
        self.read(key, &Path::from(key.as_str())).await
    }

    async fn read(&self, key: &ImageKey, path: &Path) -> object_store::Result<Option<StoredImage>> {
        match self.store.get(path).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok(Some(StoredImage { kind: key.kind(), size, body: result.into_stream() }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checks the store answers (for `/readyz`): a missing probe object is an answer too.
    pub async fn ping(&self) -> Result<(), String> {
        match self.store.head(&Path::from("readiness-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(format!("image store: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trips_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let config = ImagesConfig { local_dir: dir.path().join("images"), ..ImagesConfig::default() };
        let store = ImageStore::open(&config).unwrap();
        let png = Bytes::from_static(b"\x89PNG\r\n\x1a\nfake-image-body");
        let key = store.put(ImageKind::Png, png.clone()).await.unwrap();
        assert_eq!(store.put(ImageKind::Png, png.clone()).await.unwrap(), key, "same bytes, same key");
        let image = store.get(&key).await.unwrap().unwrap();
        assert_eq!((image.kind, image.size), (ImageKind::Png, png.len() as u64));
        let absent = ImageKey::parse(&format!("{}.png", "0".repeat(64))).unwrap();
        assert!(store.get(&absent).await.unwrap().is_none());
        assert!(store.ping().await.is_ok());
    }
}
