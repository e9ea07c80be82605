//! The screen probe: one image of every monitor, and the device-side processing that every
//! screenshot goes through before it is stored — downscale, blur when the policy says so, JPEG.
//!
//! Invariant: the raw capture never leaves this module; only the processed JPEG does, so a
//! blurred screenshot is blurred on the device and the sharp pixels never touch the disk.

use super::ProbeError;
use image::imageops::FilterType;
use image::{DynamicImage, RgbaImage};
use worktrail_shared::limits::MAX_SCREENSHOT_BYTES;
use worktrail_shared::policy::ScreenshotPolicy;

/// Captures every monitor.
pub trait ScreenProbe: Send {
    /// One raw image per monitor, in the platform's monitor order.
    fn capture_all(&mut self) -> Result<Vec<RgbaImage>, ProbeError>;
}

/// `xcap` (macOS, Windows). Linux captures through the X server instead
/// ([`super::x11_screen::X11ScreenProbe`]).
#[cfg(any(target_os = "macos", target_os = "windows"))]
#[derive(Debug, Default)]
pub struct XcapProbe;

#[cfg(any(target_os = "macos", target_os = "windows"))]

impl ScreenProbe for XcapProbe {
    fn capture_all(&mut self) -> Result<Vec<RgbaImage>, ProbeError> {
        let monitors = xcap::Monitor::all().map_err(|e| ProbeError::Platform(e.to_string()))?;
        monitors
            .iter()
            .map(|m| m.capture_image().map_err(|e| ProbeError::Platform(e.to_string())))
            .collect()
    }
}

/// A processed screenshot of one monitor, ready to queue.
#[derive(Clone, Debug)]
pub struct CapturedScreen {
    /// Monitor index.
    pub monitor: u8,
    /// Width after downscaling.
    pub width: u32,
    /// Height after downscaling.
    pub height: u32,
    /// Whether it was blurred.
    pub blurred: bool,
    /// The JPEG bytes (at most [`MAX_SCREENSHOT_BYTES`]).
    pub jpeg: Vec<u8>,
}

/// Why a capture could not be turned into a screenshot.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The JPEG encoder failed.
    #[error("jpeg encoding failed: {0}")]
    Jpeg(#[from] image::ImageError),
    /// Even at the lowest quality the image is larger than the limit.
    #[error("screenshot is larger than {MAX_SCREENSHOT_BYTES} bytes at any quality")]
    TooLarge,
}

/// Blur radius relative to the downscaled width: strong enough that text is unreadable.
fn blur_sigma(width: u32) -> f32 {
    (width as f32 / 120.0).max(4.0)
}

/// Downscales to `policy.max_width`, blurs when `policy.blur`, and encodes JPEG at
/// `policy.jpeg_quality`, lowering the quality until it fits the upload limit.
pub fn process(
    monitor: u8,
    raw: RgbaImage,
    policy: &ScreenshotPolicy,
) -> Result<CapturedScreen, EncodeError> {
    let mut img = DynamicImage::ImageRgba8(raw);
    let max_width = policy.max_width.max(16);
    if img.width() > max_width {
        let height =
            (u64::from(img.height()) * u64::from(max_width) / u64::from(img.width())).max(1) as u32;
        img = img.resize_exact(max_width, height, FilterType::Triangle);
    }
    let mut rgb = img.to_rgb8();
    if policy.blur {
        rgb = image::imageops::fast_blur(&rgb, blur_sigma(rgb.width()));
    }
    let mut quality = policy.jpeg_quality.clamp(1, 100);
    loop {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
            .encode_image(&rgb)?;
        if jpeg.len() <= MAX_SCREENSHOT_BYTES {
            return Ok(CapturedScreen {
                monitor,
                width: rgb.width(),
                height: rgb.height(),
                blurred: policy.blur,
                jpeg,
            });
        }
        if quality <= 10 {
            return Err(EncodeError::TooLarge);
        }
        quality = (quality / 2).max(10);
    }
}

/// Mean absolute difference between horizontally adjacent pixels: high for sharp text, low once
/// blurred. Used by tests and diagnostics to tell a blurred screenshot from a sharp one.
pub fn sharpness(img: &image::RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    if w < 2 || h == 0 {
        return 0.0;
    }
    let mut total = 0u64;
    for y in 0..h {
        for x in 1..w {
            let a = img.get_pixel(x - 1, y);
            let b = img.get_pixel(x, y);
            total += (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>();
        }
    }
    total as f64 / f64::from((w - 1) * h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black-and-white stripe pattern: as sharp as an image gets.
    fn stripes(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, _| {
            if (x / 2) % 2 == 0 { image::Rgba([0, 0, 0, 255]) } else { image::Rgba([255; 4]) }
        })
    }

    fn decode(jpeg: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap().to_rgb8()
    }

    #[test]
    fn screenshots_are_downscaled_to_the_max_width_keeping_the_aspect_ratio() {
        let policy = ScreenshotPolicy { max_width: 640, ..ScreenshotPolicy::default() };
        let shot = process(0, stripes(1920, 1080), &policy).unwrap();
        assert_eq!((shot.width, shot.height), (640, 360));
        assert_eq!(decode(&shot.jpeg).dimensions(), (640, 360));
        let small = process(1, stripes(320, 200), &policy).unwrap();
        assert_eq!((small.monitor, small.width, small.height), (1, 320, 200));
    }

    #[test]
    fn blur_removes_fine_detail() {
        let sharp_policy = ScreenshotPolicy { max_width: 4000, ..ScreenshotPolicy::default() };
        let blur_policy = ScreenshotPolicy { blur: true, ..sharp_policy.clone() };
        let sharp = process(0, stripes(400, 100), &sharp_policy).unwrap();
        let blurred = process(0, stripes(400, 100), &blur_policy).unwrap();
        assert!(!sharp.blurred && blurred.blurred);
        let (s, b) = (sharpness(&decode(&sharp.jpeg)), sharpness(&decode(&blurred.jpeg)));
        assert!(s > 100.0, "stripes should be sharp, got {s}");
        assert!(b < s / 10.0, "blurred {b} vs sharp {s}");
    }
}
