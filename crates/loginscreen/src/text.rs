//! Text on an RGB canvas: the shipped DejaVu Sans fonts (fonts/LICENSE), kerned, anti-aliased,
//! wrapped at word boundaries to a width.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use crate::Error;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// An RGB image being drawn, row by row, 3 bytes a pixel.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    pub fn filled(width: u32, height: u32, colour: [u8; 3]) -> Self {
        let pixels = colour
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Mixes `colour` into the pixel at (x, y) with `coverage` (0 to 1); outside: nothing.
    pub fn blend(&mut self, x: i64, y: i64, colour: [u8; 3], coverage: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let a = coverage.clamp(0.0, 1.0);
        let i = (usize::try_from(y).unwrap_or(0) * self.width as usize
            + usize::try_from(x).unwrap_or(0))
            * 3;
        for (c, target) in colour.iter().zip(&mut self.pixels[i..i + 3]) {
            let mixed = f32::from(*target) * (1.0 - a) + f32::from(*c) * a;
            *target = mixed.round().clamp(0.0, 255.0) as u8;
        }
    }

    /// A filled rectangle, pixel-aligned.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.blend(xx, yy, colour, 1.0);
            }
        }
    }

    /// A filled rectangle with round corners of radius `r`, the corners anti-aliased.
    pub fn rounded_rect(&mut self, x: i64, y: i64, w: i64, h: i64, r: i64, colour: [u8; 3]) {
        let r = r.min(w / 2).min(h / 2).max(0);
        for yy in y..y + h {
            for xx in x..x + w {
                // Distance from the nearest corner centre, for pixels in a corner square.
                let cx = if xx < x + r {
                    x + r
                } else if xx >= x + w - r {
                    x + w - r - 1
                } else {
                    xx
                };
                let cy = if yy < y + r {
                    y + r
                } else if yy >= y + h - r {
                    y + h - r - 1
                } else {
                    yy
                };
                let (dx, dy) = ((xx - cx) as f32, (yy - cy) as f32);
                let d = (dx * dx + dy * dy).sqrt();
                let coverage = (r as f32 + 0.5 - d).clamp(0.0, 1.0);
                self.blend(xx, yy, colour, coverage);
            }
        }
    }
}

/// Regular or bold.
#[derive(Debug, Clone, Copy)]
pub enum Weight {
    Regular,
    Bold,
}

/// The two shipped faces.
pub struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl Fonts {
    pub fn load() -> Result<Self, Error> {
        let font = |bytes| FontRef::try_from_slice(bytes).map_err(|e| Error::Font(e.to_string()));
        Ok(Self {
            regular: font(REGULAR)?,
            bold: font(BOLD)?,
        })
    }

    fn face(&self, weight: Weight) -> &FontRef<'static> {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// The advance width of `text` at `size` px, kerning included.
    pub fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        let font = self.face(weight).as_scaled(PxScale::from(size));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// The lines `text` breaks into at word boundaries to fit `max_width` (a word longer than
    /// the width gets a line of its own and is broken at characters).
    pub fn wrap(&self, text: &str, weight: Weight, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, weight, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the line (an address): break it after a `.`, `/` or `-` where
            // there is one, so no character seems to belong to the next line; else anywhere.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if self.width(&piece, weight, size) > max_width && piece.chars().count() > 1 {
                    piece.pop();
                    let cut = piece
                        .char_indices()
                        .filter(|&(_, ch)| matches!(ch, '.' | '/' | '-'))
                        .map(|(i, ch)| i + ch.len_utf8())
                        .next_back()
                        .filter(|&i| i < piece.len())
                        .unwrap_or(piece.len());
                    let rest = piece.split_off(cut);
                    lines.push(std::mem::replace(&mut piece, rest));
                    piece.push(c);
                }
            }
            line = piece;
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// Draws one line with its baseline at `baseline`, starting at `x`.
    pub fn draw(
        &self,
        canvas: &mut Canvas,
        (x, baseline): (f32, f32),
        text: &str,
        (weight, size): (Weight, f32),
        colour: [u8; 3],
    ) {
        let font = self.face(weight).as_scaled(PxScale::from(size));
        let mut caret = x;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, ab_glyph::point(caret, baseline));
            caret += font.h_advance(id);
            previous = Some(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                canvas.blend(
                    bounds.min.x as i64 + i64::from(gx),
                    bounds.min.y as i64 + i64::from(gy),
                    colour,
                    coverage,
                );
            });
        }
    }

    /// The distance from one baseline to the next at `size`.
    pub fn line_height(&self, weight: Weight, size: f32) -> f32 {
        let font = self.face(weight).as_scaled(PxScale::from(size));
        font.ascent() - font.descent() + font.line_gap()
    }

    /// How far the tallest glyphs reach above the baseline at `size`.
    pub fn ascent(&self, weight: Weight, size: f32) -> f32 {
        self.face(weight).as_scaled(PxScale::from(size)).ascent()
    }
}
