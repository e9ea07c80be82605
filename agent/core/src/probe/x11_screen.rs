//! Screenshots on Linux through the X server itself (`x11rb`, already the window and idle probes'
//! connection library): one `GetImage` of the root window per RandR monitor.
//!
//! Why not `xcap` here: on Linux it links PipeWire, Wayland and GBM for its Wayland path, which the
//! agent cannot use (its window probe is X11 only), and those libraries' code is a good part of
//! the tray app's memory above a bare Tauri tray (SPEC section 5). On macOS and Windows `xcap`
//! stays (see `screen.rs`).
//!
//! Each capture opens its own connection and closes it: screenshots are minutes apart, and a
//! fresh connection has nothing to go stale. Monitors come in RandR's order (the same list
//! `xcap` walks); without RandR 1.5 the whole screen is one image. Pixels are decoded with the
//! root visual's channel masks in the server's byte order, so any true-colour depth reads right.

use super::ProbeError;
use super::screen::ScreenProbe;
use image::RgbaImage;
use x11rb::connection::Connection as _;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Screen, Setup};

/// One image per monitor of an X screen.
#[derive(Debug, Default)]
pub struct X11ScreenProbe {
    display: Option<String>,
}

impl X11ScreenProbe {
    /// Captures `display` (for example `":99"`), or `$DISPLAY` when `None`.
    pub fn new(display: Option<&str>) -> Self {
        Self { display: display.map(str::to_owned) }
    }
}

fn platform<E: std::fmt::Display>(e: E) -> ProbeError {
    ProbeError::Platform(e.to_string())
}

/// A rectangle of the root window, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rect {
    x: i16,
    y: i16,
    width: u16,
    height: u16,
}

impl ScreenProbe for X11ScreenProbe {
    fn capture_all(&mut self) -> Result<Vec<RgbaImage>, ProbeError> {
        let (conn, n) = x11rb::connect(self.display.as_deref())
            .map_err(|e| ProbeError::NoDisplay(e.to_string()))?;
        let screen = &conn.setup().roots[n];
        monitors(&conn, screen)?
            .into_iter()
            .map(|r| {
                let reply = conn
                    .get_image(ImageFormat::Z_PIXMAP, screen.root, r.x, r.y, r.width, r.height, !0)
                    .map_err(platform)?
                    .reply()
                    .map_err(platform)?;
                let layout = Layout::of(conn.setup(), screen, reply.depth, reply.visual)?;
                layout.decode(&reply.data, u32::from(r.width), u32::from(r.height))
            })
            .collect()
    }
}

/// The active RandR monitors, or the whole screen when the server has no RandR 1.5.
fn monitors(
    conn: &impl x11rb::connection::Connection,
    screen: &Screen,
) -> Result<Vec<Rect>, ProbeError> {
    let whole = Rect { x: 0, y: 0, width: screen.width_in_pixels, height: screen.height_in_pixels };
    let has_randr = conn
        .extension_information(x11rb::protocol::randr::X11_EXTENSION_NAME)
        .map_err(platform)?
        .is_some();
    if !has_randr {
        return Ok(vec![whole]);
    }
    let version = conn.randr_query_version(1, 5).map_err(platform)?.reply().map_err(platform)?;
    if (version.major_version, version.minor_version) < (1, 5) {
        return Ok(vec![whole]);
    }
    let reply =
        conn.randr_get_monitors(screen.root, true).map_err(platform)?.reply().map_err(platform)?;
    let rects: Vec<Rect> = reply
        .monitors
        .iter()
        .map(|m| Rect { x: m.x, y: m.y, width: m.width, height: m.height })
        .filter(|r| r.width > 0 && r.height > 0)
        .collect();
    Ok(if rects.is_empty() { vec![whole] } else { rects })
}

/// How the server lays out the pixels of one image.
#[derive(Clone, Copy, Debug)]
struct Layout {
    bytes_per_pixel: usize,
    /// Each row is padded to a multiple of this many bits.
    pad_bits: u32,
    msb_first: bool,
    masks: [u32; 3],
}

impl Layout {
    fn of(setup: &Setup, screen: &Screen, depth: u8, visual: u32) -> Result<Self, ProbeError> {
        let format = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .ok_or_else(|| platform(format!("no pixmap format for depth {depth}")))?;
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == visual)
            .ok_or_else(|| platform(format!("unknown visual {visual:#x}")))?;
        let bytes_per_pixel = match format.bits_per_pixel {
            16 | 24 | 32 => usize::from(format.bits_per_pixel / 8),
            bpp => return Err(platform(format!("{bpp} bits per pixel is not supported"))),
        };
        Ok(Self {
            bytes_per_pixel,
            pad_bits: u32::from(format.scanline_pad).max(8),
            msb_first: setup.image_byte_order == ImageOrder::MSB_FIRST,
            masks: [visual.red_mask, visual.green_mask, visual.blue_mask],
        })
    }

    /// RGBA pixels (opaque) of a `width` × `height` image in this layout.
    fn decode(&self, data: &[u8], width: u32, height: u32) -> Result<RgbaImage, ProbeError> {
        let bits = width * self.bytes_per_pixel as u32 * 8;
        let stride = (bits.div_ceil(self.pad_bits) * self.pad_bits / 8) as usize;
        let row = width as usize * self.bytes_per_pixel;
        if data.len() < stride * (height as usize).saturating_sub(1) + row {
            return Err(platform(format!(
                "short image: {} bytes for {width}×{height}",
                data.len()
            )));
        }
        let channels = self.masks.map(Channel::of);
        let mut out = Vec::with_capacity(width as usize * height as usize * 4);
        for y in 0..height as usize {
            for px in data[y * stride..y * stride + row].chunks_exact(self.bytes_per_pixel) {
                let value = if self.msb_first {
                    px.iter().fold(0u32, |v, &b| v << 8 | u32::from(b))
                } else {
                    px.iter().rev().fold(0u32, |v, &b| v << 8 | u32::from(b))
                };
                out.extend(channels.map(|c| c.read(value)));
                out.push(255);
            }
        }
        RgbaImage::from_raw(width, height, out).ok_or_else(|| platform("image size"))
    }
}

/// One colour channel of a pixel value: where its bits are and how many.
#[derive(Clone, Copy, Debug)]
struct Channel {
    shift: u32,
    bits: u32,
}

impl Channel {
    fn of(mask: u32) -> Self {
        if mask == 0 {
            return Self { shift: 0, bits: 0 };
        }
        Self { shift: mask.trailing_zeros(), bits: (mask >> mask.trailing_zeros()).trailing_ones() }
    }

    /// The channel scaled to 8 bits.
    fn read(self, value: u32) -> u8 {
        if self.bits == 0 {
            return 0;
        }
        let max = (1u32 << self.bits) - 1;
        let v = (value >> self.shift) & max;
        (v * 255 / max) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bytes_per_pixel: usize, msb_first: bool, masks: [u32; 3]) -> Layout {
        Layout { bytes_per_pixel, pad_bits: 32, msb_first, masks }
    }

    #[test]
    fn depth_24_in_32_bits_little_endian_reads_as_bgrx() {
        let data = [0x30, 0x20, 0x10, 0x00, 0xff, 0x00, 0x80, 0x00];
        let img = layout(4, false, [0xff0000, 0x00ff00, 0x0000ff]).decode(&data, 2, 1).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0x10, 0x20, 0x30, 255]);
        assert_eq!(img.get_pixel(1, 0).0, [0x80, 0x00, 0xff, 255]);
    }

    #[test]
    fn big_endian_servers_are_read_in_their_byte_order() {
        let data = [0x00, 0x10, 0x20, 0x30];
        let img = layout(4, true, [0xff0000, 0x00ff00, 0x0000ff]).decode(&data, 1, 1).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0x10, 0x20, 0x30, 255]);
    }

    #[test]
    fn rgb565_is_scaled_to_full_range() {
        // Pure white and pure red in 5-6-5, little-endian, rows padded to 32 bits.
        let data = [0xff, 0xff, 0x00, 0x00, 0x00, 0xf8, 0x00, 0x00];
        let img = layout(2, false, [0xf800, 0x07e0, 0x001f]).decode(&data, 1, 2).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255, 255]);
        assert_eq!(img.get_pixel(0, 1).0, [255, 0, 0, 255]);
    }

    #[test]
    fn a_short_reply_is_an_error_not_a_panic() {
        let err = layout(4, false, [0xff0000, 0x00ff00, 0x0000ff]).decode(&[0; 7], 2, 1);
        assert!(matches!(err, Err(ProbeError::Platform(_))));
    }
}
