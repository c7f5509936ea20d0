//! Image formats accepted for product pictures, recognised by their bytes, never by the
//! client's declared content type; and [`clean_image`], which turns an upload into an image
//! that is only an image: decoded within pixel bounds, nothing after its end, re-encoded
//! without metadata.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits};

/// A supported image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
}

/// Largest image accepted, in bytes.
pub(crate) const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Widest and tallest image accepted, in pixels.
pub(crate) const MAX_IMAGE_SIDE: u32 = 10_000;
/// Most pixels an image may have (a 6000 × 4000 photo has 24 million). Decoded, each pixel
/// takes up to 8 bytes (16-bit RGBA), so this bounds one decode to about 320 MiB.
pub(crate) const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// JPEG quality of the re-encoded image: visually lossless for product photos.
const JPEG_QUALITY: u8 = 90;

impl ImageKind {
    /// Recognises JPEG, PNG and WebP by their magic bytes.
    pub(crate) fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Self::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Self::Webp),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Webp => "WebP",
        }
    }

    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The extension of its stored keys.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Webp => ImageFormat::WebP,
        }
    }

    /// Where the image that starts `bytes` ends, by its container's structure (PNG chunks up to
    /// `IEND`, JPEG segments and scans up to `EOI`, the RIFF size of WebP); `None` when the
    /// structure is cut short or broken.
    fn end_of(self, bytes: &[u8]) -> Option<usize> {
        match self {
            Self::Jpeg => jpeg_end(bytes),
            Self::Png => png_end(bytes),
            Self::Webp => {
                let size = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
                let end = size.checked_add(8)?;
                // A RIFF chunk of odd size is followed by one padding byte.
                (end <= bytes.len()).then(|| (end + size % 2).min(bytes.len()))
            }
        }
    }

    /// The format a stored key was saved as, from its extension.
    fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }
}

/// The key an image is stored and served under: the SHA-256 of its bytes in 64 lowercase hex
/// digits, a dot and its format's extension (`3f…a9.png`). Anything else (`..`, slashes,
/// uppercase) is not a key of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKey {
    key: String,
    kind: ImageKind,
}

impl ImageKey {
    /// The key of content with this SHA-256 `digest`.
    pub fn for_content(kind: ImageKind, digest: &[u8]) -> Self {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self { key: format!("{hex}.{}", kind.extension()), kind }
    }

    /// `None` for anything that is not a content-hash key.
    pub fn parse(key: &str) -> Option<Self> {
        let (hash, ext) = key.split_once('.')?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let kind = ImageKind::from_extension(ext)?;
        Some(Self { key: key.to_owned(), kind })
    }

    /// The key as stored and served.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The content hash alone: the same bytes have the same hash whatever their key.
    pub fn hash(&self) -> &str {
        self.key.split_once('.').map_or(self.key.as_str(), |(hash, _)| hash)
    }

    /// The image's format.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }
}

impl std::fmt::Display for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

/// Why an upload is not an acceptable image. Each reads after "the `image` field".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ImageProblem {
    #[error("is not a JPEG, PNG or WebP image")]
    UnknownFormat,
    #[error("has {0} bytes after the end of the image; upload the image file alone")]
    TrailingData(usize),
    #[error(
        "is larger than accepted: at most {MAX_IMAGE_SIDE} pixels wide and high and {MAX_IMAGE_PIXELS} pixels in all"
    )]
    TooLarge,
    #[error("cannot be read as a {0}: {1}")]
    Broken(&'static str, String),
}

/// The widths, in pixels, of the smaller copies made of every image for listings and
/// `srcset` (`GET /api/v1/images/{key}?width=`): only those narrower than the image itself.
pub const VARIANT_WIDTHS: [u32; 3] = [160, 320, 640];

/// An upload made safe to store and serve, with its narrower copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanImage {
    pub kind: ImageKind,
    pub bytes: Vec<u8>,
    /// (width, bytes) for each of [`VARIANT_WIDTHS`] narrower than the image, in its format.
    pub variants: Vec<(u32, Vec<u8>)>,
}

/// Checks that `bytes` are one JPEG, PNG or WebP image and nothing else, and re-encodes it in
/// the same format: the pixel size is checked from the header before any pixel is decoded
/// (and the decoder's own limits are set), anything after the image's end is refused, and the
/// re-encoded image carries no EXIF or XMP (camera location), its EXIF orientation applied to
/// the pixels instead. The colour profile is kept. CPU-bound: run it on a blocking thread.
/// Animated images keep their first frame.
pub(crate) fn clean_image(bytes: &[u8]) -> Result<CleanImage, ImageProblem> {
    let kind = ImageKind::sniff(bytes).ok_or(ImageProblem::UnknownFormat)?;
    let broken = |reason: String| ImageProblem::Broken(kind.name(), reason);
    let end = kind.end_of(bytes).ok_or_else(|| broken("the file is cut short or malformed".into()))?;
    if end < bytes.len() {
        return Err(ImageProblem::TrailingData(bytes.len() - end));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8 + 64 * 1024 * 1024);
    reader.limits(limits);
    let decoding = |e: ImageError| match e {
        ImageError::Limits(_) => ImageProblem::TooLarge,
        other => broken(other.to_string()),
    };
    let mut decoder = reader.into_decoder().map_err(decoding)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(ImageProblem::TooLarge);
    }
    let orientation = decoder.orientation().map_err(decoding)?;
    let icc_profile = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(decoding)?;
    image.apply_orientation(orientation);
    let encoded = encode(&image, kind, icc_profile.clone()).map_err(|e| broken(e.to_string()))?;
    let variants = VARIANT_WIDTHS
        .into_iter()
        .filter(|width| *width < image.width())
        .map(|width| {
            let smaller = image.resize(width, u32::MAX, image::imageops::FilterType::Triangle);
            encode(&smaller, kind, icc_profile.clone()).map(|bytes| (width, bytes))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| broken(e.to_string()))?;
    Ok(CleanImage { kind, bytes: encoded, variants })
}

fn encode(
    image: &DynamicImage,
    kind: ImageKind,
    icc_profile: Option<Vec<u8>>,
) -> Result<Vec<u8>, ImageError> {
    fn with_profile<E: ImageEncoder>(mut encoder: E, icc_profile: Option<Vec<u8>>) -> E {
        if let Some(profile) = icc_profile {
            // An encoder that cannot carry a profile simply leaves it out.
            let _ = encoder.set_icc_profile(profile);
        }
        encoder
    }
    let mut out = Vec::new();
    match kind {
        ImageKind::Jpeg => image.write_with_encoder(with_profile(
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY),
            icc_profile,
        ))?,
        ImageKind::Png => image.write_with_encoder(with_profile(PngEncoder::new(&mut out), icc_profile))?,
        // The only WebP encoder in pure Rust is lossless: larger files, never worse pixels.
        ImageKind::Webp => {
            image.write_with_encoder(with_profile(WebPEncoder::new_lossless(&mut out), icc_profile))?
        }
    }
    Ok(out)
}

/// The end of the PNG chunk sequence: just after the `IEND` chunk.
fn png_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 8;
    loop {
        let length = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let kind = bytes.get(at + 4..at + 8)?;
        // Length, type, data, CRC.
        let next = at.checked_add(12)?.checked_add(length)?;
        if next > bytes.len() {
            return None;
        }
        if kind == b"IEND" {
            return Some(next);
        }
        at = next;
    }
}

/// The end of a JPEG: just after its `EOI` marker, walking the marker segments by their
/// lengths and each scan's entropy-coded data up to the next real marker.
fn jpeg_end(bytes: &[u8]) -> Option<usize> {
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    let is_restart = |marker: u8| (0xD0..=0xD7).contains(&marker);
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        if marker == EOI {
            return Some(at);
        }
        if is_restart(marker) || marker == 0x01 {
            continue;
        }
        let length = u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]) as usize;
        if length < 2 {
            return None;
        }
        at = at.checked_add(length)?;
        if marker == SOS {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart marker,
            // or fill bytes; anything else is the next marker.
            loop {
                if *bytes.get(at)? != 0xFF {
                    at += 1;
                    continue;
                }
                match *bytes.get(at + 1)? {
                    0x00 => at += 2,
                    next if is_restart(next) => at += 2,
                    0xFF => at += 1,
                    _ => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_hash_keys_are_accepted() {
        let good = format!("{}.png", "a".repeat(64));
        let key = ImageKey::parse(&good).unwrap();
        assert_eq!((key.kind(), key.hash()), (ImageKind::Png, "a".repeat(64).as_str()));
        for bad in
            ["../etc/passwd", "x.png", &format!("{}.gif", "a".repeat(64)), &format!("{}.png", "A".repeat(64))]
        {
            assert_eq!(ImageKey::parse(bad), None, "{bad}");
        }
        assert_eq!(
            ImageKey::for_content(ImageKind::Webp, &[0xab; 32]).as_str(),
            format!("{}.webp", "ab".repeat(32))
        );
    }

    #[test]
    fn formats_are_recognised_by_their_bytes() {
        assert_eq!(ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
    }

    fn picture(format: ImageFormat) -> Vec<u8> {
        let pixels = image::RgbImage::from_fn(16, 9, |x, y| image::Rgb([x as u8 * 16, y as u8 * 28, 200]));
        let mut bytes = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(pixels).write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn each_format_ends_where_its_container_says() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
            let bytes = picture(format);
            let kind = ImageKind::sniff(&bytes).unwrap();
            assert_eq!(kind.end_of(&bytes), Some(bytes.len()), "{format:?}");
            let longer = [bytes.clone(), b"<html>".to_vec()].concat();
            assert_eq!(kind.end_of(&longer), Some(bytes.len()), "{format:?} with trailing data");
            assert_eq!(kind.end_of(&bytes[..bytes.len() - 3]), None, "{format:?} cut short");
        }
    }

    #[test]
    fn clean_images_keep_format_and_pixels_size() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
            let clean = clean_image(&picture(format)).unwrap();
            let decoded = image::load_from_memory_with_format(&clean.bytes, format).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (16, 9), "{format:?}");
        }
    }

    #[test]
    fn trailing_data_and_broken_images_are_refused() {
        let polyglot = [picture(ImageFormat::Png), b"<script>".to_vec()].concat();
        assert_eq!(clean_image(&polyglot), Err(ImageProblem::TrailingData(8)));
        assert_eq!(clean_image(b"GIF89a"), Err(ImageProblem::UnknownFormat));
        assert!(matches!(clean_image(b"\x89PNG\r\n\x1a\n<html>"), Err(ImageProblem::Broken("PNG", _))));
    }

    #[test]
    fn other_content_is_refused() {
        for bytes in [&b"GIF89a"[..], b"<svg xmlns=", b"%PDF-1.7", b"", b"RIFF\0\0\0\0WAVE"] {
            assert_eq!(ImageKind::sniff(bytes), None);
        }
    }
}
