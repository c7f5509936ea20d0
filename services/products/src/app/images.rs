//! Product images: an upload is decoded and re-encoded (`clean_image`) before it is stored
//! under its content hash, with its narrower copies for listings, and added to its product; a
//! stored image (or one of its copies) is read back by key. The demo catalog's products get
//! pictures drawn for them (`fill_missing_pictures`).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::domain::image::{CleanImage, ImageKey, ImageProblem, clean_image};
use crate::domain::picture::demo_picture;
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
        let CleanImage { kind, bytes, variants } = self.clean(upload).await?;
        let key = self.store.put(kind, bytes.into()).await?;
        for (width, bytes) in variants {
            self.store.put_variant(&key, width, bytes.into()).await?;
        }
        // The product may have been deleted while its image was decoded.
        self.records.add_image(product_id, key.as_str()).await?.ok_or(ImageError::NoSuchProduct)?;
        Ok(key)
    }

    /// A stored image, being read — its copy `width` pixels wide when asked for and there is
    /// one, else the image itself (narrower than `width`, or stored before copies were made);
    /// `None` when there is none under `key`.
    pub async fn image(&self, key: &ImageKey, width: Option<u32>) -> Result<Option<StoredImage>, ImageError> {
        if let Some(width) = width
            && let Some(variant) = self.store.get_variant(key, width).await?
        {
            return Ok(Some(variant));
        }
        Ok(self.store.get(key).await?)
    }

    /// Draws a picture (`demo_picture`) for every live product that has none, and adds it as an
    /// upload would be (with its narrower copies); answers how many. For the demo catalog of
    /// `mercato up`, whose generated products come without pictures.
    pub async fn fill_missing_pictures(&self) -> Result<usize, ImageError> {
        const BATCH: u64 = 200;
        let mut added = 0;
        loop {
            let missing = self.records.without_images(BATCH).await?;
            if missing.is_empty() {
                return Ok(added);
            }
            for (id, name, category) in missing {
                let picture = tokio::task::spawn_blocking(move || demo_picture(&name, &category))
                    .await
                    .map_err(|e| ImageError::Decoding(e.to_string()))?;
                match self.upload(id, picture.into()).await {
                    Ok(_) => added += 1,
                    // Deleted meanwhile: nothing to add a picture to.
                    Err(ImageError::NoSuchProduct) => {}
                    Err(e) => return Err(e),
                }
            }
        }
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
