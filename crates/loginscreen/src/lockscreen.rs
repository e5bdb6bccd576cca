//! Lock-screen images: the branding colour, and on the right a white card with the brand, what
//! to do, the portal's address and a QR code to it — the way to the portal for someone at a PC
//! without a kiosk account: their phone. The card sits right of centre and away from the top and
//! bottom, where Windows 10 and 11 draw the clock, the date and notifications.

use qrcode::{Color, EcLevel, QrCode};

use crate::Error;
use crate::text::{Canvas, Fonts, Weight};

/// The sizes written by default: common 16:9 screens (HD, full HD, QHD, 4K), 16:10 and 5:4.
pub const SIZES: &[(u32, u32)] = &[
    (1366, 768),
    (1920, 1080),
    (2560, 1440),
    (3840, 2160),
    (1920, 1200),
    (1280, 1024),
];

/// What the image says.
#[derive(Debug, Clone)]
pub struct LockScreen<'a> {
    /// Background, and the colour of the brand name and the address (`#rrggbb` already parsed;
    /// readable on white, as the portal's branding check makes sure).
    pub colour: [u8; 3],
    pub brand: &'a str,
    /// "Forgot your password or locked out?"
    pub title: &'a str,
    /// What to do: scan the code, or open the address.
    pub body: &'a str,
    /// The address as people read and type it.
    pub address: &'a str,
    /// What the QR code opens (the portal's URL).
    pub qr_target: &'a str,
    /// A last line, e.g. about the kiosk account on shared PCs.
    pub footnote: Option<&'a str>,
}

const WHITE: [u8; 3] = [255, 255, 255];
const TEXT: [u8; 3] = [0x1b, 0x1b, 0x1b];
const MUTED: [u8; 3] = [0x4a, 0x4a, 0x4a];

/// Renders `screen` at `width` x `height` as a PNG.
pub fn render_png(screen: &LockScreen<'_>, width: u32, height: u32) -> Result<Vec<u8>, Error> {
    if !(640..=7680).contains(&width) || !(480..=4320).contains(&height) {
        return Err(Error::Size { width, height });
    }
    let canvas = render(screen, width, height)?;
    encode(&canvas)
}

/// The QR code's modules, row by row (`true` = dark), and its width in modules.
pub fn qr_modules(target: &str) -> Result<(Vec<bool>, usize), Error> {
    let code = QrCode::with_error_correction_level(target.as_bytes(), EcLevel::M)
        .map_err(|e| Error::Qr(e.to_string()))?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((dark, width))
}

fn render(screen: &LockScreen<'_>, width: u32, height: u32) -> Result<Canvas, Error> {
    let fonts = Fonts::load()?;
    let mut canvas = Canvas::filled(width, height, screen.colour);
    // Everything scales with the height (a 1080-pixel-high design), bounded by the width for
    // narrow (5:4) screens.
    let s = (height as f32 / 1080.0).min(width as f32 / 1600.0);
    let (w, h) = (width as f32, height as f32);
    // Windows fills the screen with the image, cropping what does not fit its aspect ratio:
    // the card stays inside the middle 4:3 of a wider image, so a 16:10, 3:2 or 5:4 screen shown
    // a 16:9 image still shows all of it.
    let safe_w = w.min(h * 4.0 / 3.0);
    let safe_x = (w - safe_w) / 2.0;
    let margin = 40.0 * s;
    let card_w = (safe_w * 0.56).min(760.0 * s);
    let pad = 48.0 * s;
    let inner = card_w - 2.0 * pad;

    let brand_size = 30.0 * s;
    let title_size = 50.0 * s;
    let body_size = 28.0 * s;
    let foot_size = 24.0 * s;
    let brand = fonts.wrap(screen.brand, Weight::Bold, brand_size, inner);
    let title = fonts.wrap(screen.title, Weight::Bold, title_size, inner);
    let body = fonts.wrap(screen.body, Weight::Regular, body_size, inner);
    let footnote = screen
        .footnote
        .map(|f| fonts.wrap(f, Weight::Regular, foot_size, inner))
        .unwrap_or_default();
    // The address on one line if it fits at a readable size, else wrapped.
    let mut address_size = 38.0 * s;
    while fonts.width(screen.address, Weight::Bold, address_size) > inner && address_size > 22.0 * s
    {
        address_size -= 1.0;
    }
    let address = fonts.wrap(screen.address, Weight::Bold, address_size, inner);

    let (modules, n) = qr_modules(screen.qr_target)?;
    // Whole pixels per module, and the 4-module quiet zone, keep it crisp for phone cameras; below
    // 4 pixels a module a camera across a desk no longer reads it.
    let qr_span = (inner * 0.62).min(380.0 * s);
    let module = (qr_span / (n as f32 + 8.0)).floor() as i64;
    if module < 4 {
        return Err(Error::Invalid(format!(
            "the portal's address is too long for a QR code readable on a {width}x{height} image"
        )));
    }
    let qr_px = module * (n as i64 + 8);

    let gap = 22.0 * s;
    let lh = |weight, size| fonts.line_height(weight, size);
    let parts = [
        (
            "the brand name",
            brand.len() as f32 * lh(Weight::Bold, brand_size),
        ),
        (
            "the title",
            title.len() as f32 * lh(Weight::Bold, title_size),
        ),
        (
            "the text",
            body.len() as f32 * lh(Weight::Regular, body_size),
        ),
        (
            "the address",
            address.len() as f32 * lh(Weight::Bold, address_size),
        ),
        ("the QR code", qr_px as f32),
        (
            "the footnote",
            footnote.len() as f32 * lh(Weight::Regular, foot_size),
        ),
    ];
    let content_h: f32 =
        parts.iter().map(|(_, height)| height).sum::<f32>() + gap * (parts.len() - 1) as f32;
    let card_h = content_h + 2.0 * pad;
    if card_h > h - 2.0 * margin {
        let (longest, _) = parts
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .copied()
            .unwrap_or(("the text", 0.0));
        return Err(Error::Invalid(format!(
            "the card does not fit a {width}x{height} image; shorten {longest}"
        )));
    }
    // Right of centre, inside the safe area; below the top quarter where Windows 11 draws the
    // clock when there is room, never off the image.
    let card_x = safe_x + safe_w - card_w - margin;
    let card_y = ((h - card_h) / 2.0).max(h * 0.25).min(h - card_h - margin);
    canvas.rounded_rect(
        card_x as i64,
        card_y as i64,
        card_w as i64,
        card_h as i64,
        (24.0 * s) as i64,
        WHITE,
    );

    let x = card_x + pad;
    let mut y = card_y + pad;
    let lines = |canvas: &mut Canvas, y: &mut f32, lines: &[String], style, colour| {
        let (weight, size) = style;
        for line in lines {
            let baseline = *y + fonts.ascent(weight, size);
            fonts.draw(canvas, (x, baseline), line, style, colour);
            *y += lh(weight, size);
        }
    };
    lines(
        &mut canvas,
        &mut y,
        &brand,
        (Weight::Bold, brand_size),
        screen.colour,
    );
    y += gap;
    lines(
        &mut canvas,
        &mut y,
        &title,
        (Weight::Bold, title_size),
        TEXT,
    );
    y += gap;
    lines(
        &mut canvas,
        &mut y,
        &body,
        (Weight::Regular, body_size),
        MUTED,
    );
    y += gap;
    lines(
        &mut canvas,
        &mut y,
        &address,
        (Weight::Bold, address_size),
        screen.colour,
    );
    y += gap;
    // The quiet zone reaches into the card's padding (never past it), so the code lines up with
    // the text.
    let quiet = (4 * module) as f32;
    draw_qr(
        &mut canvas,
        ((x - quiet.min(pad)) as i64, y as i64),
        &modules,
        n,
        module,
    );
    y += qr_px as f32;
    y += gap;
    if !footnote.is_empty() {
        lines(
            &mut canvas,
            &mut y,
            &footnote,
            (Weight::Regular, foot_size),
            MUTED,
        );
    }
    Ok(canvas)
}

/// The QR code with its quiet zone, top-left at `origin`, `module` pixels a module.
fn draw_qr(canvas: &mut Canvas, origin: (i64, i64), modules: &[bool], n: usize, module: i64) {
    let quiet = 4 * module;
    let side = module * (n as i64 + 8);
    canvas.rect(origin.0, origin.1, side, side, WHITE);
    for (i, dark) in modules.iter().enumerate() {
        if !dark {
            continue;
        }
        let (row, col) = ((i / n) as i64, (i % n) as i64);
        canvas.rect(
            origin.0 + quiet + col * module,
            origin.1 + quiet + row * module,
            module,
            module,
            [0, 0, 0],
        );
    }
}

fn encode(canvas: &Canvas) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, canvas.width, canvas.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::Png(e.to_string()))?;
        writer
            .write_image_data(&canvas.pixels)
            .map_err(|e| Error::Png(e.to_string()))?;
        writer.finish().map_err(|e| Error::Png(e.to_string()))?;
    }
    Ok(out)
}

/// `#rrggbb` as RGB.
pub fn parse_colour(hex: &str) -> Result<[u8; 3], Error> {
    let bad = || Error::Invalid(format!("colour {hex:?} is not #rrggbb"));
    let digits = hex
        .strip_prefix('#')
        .filter(|d| d.len() == 6)
        .ok_or_else(bad)?;
    let channel = |i: usize| u8::from_str_radix(digits.get(i..i + 2).unwrap_or("zz"), 16);
    Ok([
        channel(0).map_err(|_| bad())?,
        channel(2).map_err(|_| bad())?,
        channel(4).map_err(|_| bad())?,
    ])
}
