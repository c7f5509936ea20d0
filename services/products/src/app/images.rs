//! Product images: an upload is decoded and re-encoded (`clean_image`) before it is stored
//! under its content hash and added to its product; a stored image is read back by key.
//! (Resized variants will be made here too.)

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::domain::image::{CleanImage, ImageKey, ImageProblem, clean_image};
use crate::store::{CatalogStore, ImageStore, StoreError, StoredImage};

/// How many uploads are decoded at once: each decode may hold a few hundred MiB of pixels.
const DECODES_AT_ONCE: usize = 2;

/// Why an image could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// The product is absent or deleted.
    #[error("no such product")]
    NoSuchProduct,
    /// The upload is not one acceptable image.
    #[error("the `image` field {0}")]
    Unacceptable(ImageProblem),
    /// The object store failed or cannot be reached.
    #[error("image store: {0}")]
    Storage(#[from] object_store::Error),
    /// Decoding could not run to its end (the blocking task panicked or was cancelled).
    #[error("decoding the image failed: {0}")]
    Decoding(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The image use cases, over the catalogue (which lists each product's images) and the image
/// store.
#[derive(Clone)]
pub(crate) struct Images {
    records: Arc<dyn CatalogStore>,
    store: ImageStore,
    decoding: Arc<Semaphore>,
}

impl Images {
    pub fn new(records: Arc<dyn CatalogStore>, store: ImageStore) -> Self {
        Self { records, store, decoding: Arc::new(Semaphore::new(DECODES_AT_ONCE)) }
    }

    /// Adds `upload` to a live product's images, cleaned of anything but the image, and
    /// answers its key. Nothing is decoded for a product that does not exist.
    pub async fn upload(&self, product_id: Uuid, upload: Bytes) -> Result<ImageKey, ImageError> {
        if self.records.product(product_id).await?.is_none() {
            return Err(ImageError::NoSuchProduct);
        }
        let CleanImage { kind, bytes } = self.clean(upload).await?;
        let key = self.store.put(kind, bytes.into()).await?;
        // The product may have been deleted while its image was decoded.
        self.records.add_image(product_id, key.as_str()).await?.ok_or(ImageError::NoSuchProduct)?;
        Ok(key)
    }

    /// A stored image, being read; `None` when there is none under `key`.
    pub async fn image(&self, key: &ImageKey) -> Result<Option<StoredImage>, ImageError> {
        Ok(self.store.get(key).await?)
    }

    /// [`clean_image`] on a blocking thread, [`DECODES_AT_ONCE`] at a time.
    async fn clean(&self, upload: Bytes) -> Result<CleanImage, ImageError> {
        let _slot = self.decoding.acquire().await.map_err(|e| ImageError::Decoding(e.to_string()))?;
        tokio::task::spawn_blocking(move || clean_image(&upload))
            .await
            .map_err(|e| ImageError::Decoding(e.to_string()))?
            .map_err(ImageError::Unacceptable)
    }
}
