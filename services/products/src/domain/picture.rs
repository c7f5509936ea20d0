//! Pictures for the demo catalog, drawn here at seed time (no download): a soft background in
//! the colour of the product's category, and a shape and colour chosen from its name, so every
//! product has a picture of its own and the products of one category look alike.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// The side, in pixels, of a demo picture: the widest listing width, so the narrower ones are
/// made from it.
pub const PICTURE_SIDE: u32 = 640;

/// FNV-1a: a small stable hash (the same picture for the same name on every run).
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A colour of the hue `seed` picks: each channel `floor + span × (its share of the hue)`, so a
/// high floor gives a pastel and a low one a deep colour.
fn colour(seed: u64, floor: f32, span: f32) -> [f32; 3] {
    let hue = (seed % 360) as f32 / 60.0;
    let x = 1.0 - ((hue % 2.0) - 1.0).abs();
    let (r, g, b) = match hue as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [r, g, b].map(|c| floor + span * c)
}

/// The PNG picture of a product named `name` in `category`: flat colours (a few KB as PNG),
/// drawn row by row (cheap even in a debug build).
pub fn demo_picture(name: &str, category: &str) -> Vec<u8> {
    let side = PICTURE_SIDE as usize;
    let background = colour(hash(category), 205.0, 45.0).map(|c| c as u8);
    let seed = hash(name);
    let ink = colour(seed >> 9, 40.0, 130.0).map(|c| c as u8);
    let shape = seed % 3;
    let radius = side as f32 * (0.24 + ((seed >> 20) % 10) as f32 / 100.0);
    let centre = side as f32 / 2.0;
    let mut picture = RgbImage::from_pixel(PICTURE_SIDE, PICTURE_SIDE, Rgb(background));
    let ink_row: Vec<u8> = ink.repeat(side);
    let pixels: &mut [u8] = &mut picture;
    for y in 0..side {
        let dy = y as f32 + 0.5 - centre;
        // The half-width of the shape on this row, if the row crosses it.
        let half = match shape {
            0 => (radius * radius - dy * dy).max(0.0).sqrt() * f32::from(u8::from(dy.abs() <= radius)),
            1 => radius * f32::from(u8::from(dy.abs() <= radius * 0.8)),
            _ => (dy + radius) * 0.6 * f32::from(u8::from(dy.abs() <= radius)),
        };
        if half < 1.0 {
            continue;
        }
        let from = (centre - half).max(0.0) as usize;
        let to = ((centre + half) as usize).min(side);
        let row = y * side * 3;
        pixels[row + from * 3..row + to * 3].copy_from_slice(&ink_row[from * 3..to * 3]);
    }
    let mut png = Vec::new();
    // Writing an in-memory PNG of a valid image cannot fail.
    let _ = picture.write_to(&mut Cursor::new(&mut png), ImageFormat::Png);
    png
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_picture_is_a_png_of_its_side_the_same_for_a_name_and_different_between_names() {
        let kettle = demo_picture("Steel Kettle", "kitchen");
        let decoded = image::load_from_memory_with_format(&kettle, ImageFormat::Png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (PICTURE_SIDE, PICTURE_SIDE));
        assert_eq!(kettle, demo_picture("Steel Kettle", "kitchen"), "stable from run to run");
        assert_ne!(kettle, demo_picture("Copper Kettle", "kitchen"));
        let clean = crate::domain::image::clean_image(&kettle).unwrap();
        let widths: Vec<u32> = clean.variants.iter().map(|(w, _)| *w).collect();
        assert_eq!(widths, [160, 320], "every narrower listing width is made");
    }
}
