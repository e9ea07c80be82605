//! A JPEG sanity check without decoding: the upload starts with SOI, declares its size in a
//! start-of-frame header within bounds, and ends with EOI (a truncated upload does not).
//! Decoding is left to whoever displays the image; this only keeps garbage out of storage. The
//! server applies it to every upload; it is fuzzed (`shared/fuzz`).

/// Largest width or height accepted, in pixels (a 4K monitor is 3840 wide before downscaling).
pub const MAX_SIDE: u16 = 8192;

/// Width and height declared by a JPEG's frame header, or why it is not an acceptable JPEG.
pub fn dimensions(bytes: &[u8]) -> Result<(u16, u16), &'static str> {
    if bytes.len() < 4 || bytes[..3] != [0xFF, 0xD8, 0xFF] {
        return Err("not a JPEG (no start-of-image marker)");
    }
    if bytes[bytes.len() - 2..] != [0xFF, 0xD9] {
        return Err("the JPEG is truncated (no end-of-image marker)");
    }
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return Err("the JPEG's header is corrupt");
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if len < 2 || i + 2 + len > bytes.len() {
            return Err("the JPEG's header is corrupt");
        }
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            if len < 7 {
                return Err("the JPEG's frame header is corrupt");
            }
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
            if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
                return Err("the JPEG's dimensions are out of bounds");
            }
            return Ok((w, h));
        }
        if marker == 0xDA {
            break;
        }
        i += 2 + len;
    }
    Err("the JPEG has no frame header")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal baseline JPEG header: SOI, SOF0 (w × h, 1 component), SOS, EOI.
    fn tiny_jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        v.extend_from_slice(&[0x12, 0x34, 0xFF, 0xD9]);
        v
    }

    #[test]
    fn the_fuzz_seed_is_accepted() {
        assert_eq!(
            dimensions(include_bytes!("../fuzz/seeds/jpeg_check/tiny.jpg")),
            Ok((1280, 720))
        );
    }

    #[test]
    fn a_well_formed_header_gives_its_size() {
        assert_eq!(dimensions(&tiny_jpeg(1280, 720)), Ok((1280, 720)));
    }

    #[test]
    fn garbage_truncation_and_huge_dimensions_are_refused() {
        assert!(dimensions(b"\x89PNG\r\n\x1a\n....").is_err());
        let jpeg = tiny_jpeg(1280, 720);
        assert!(dimensions(&jpeg[..jpeg.len() - 3]).is_err());
        assert!(dimensions(&tiny_jpeg(60000, 60000)).is_err());
        assert!(dimensions(&tiny_jpeg(0, 10)).is_err());
    }
}
