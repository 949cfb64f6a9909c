//! QR codes of client configs, as PNG images a phone's WireGuard app can scan (what wg-easy
//! shows). The QR symbol comes from the `qrcode` crate; the PNG around it is written here —
//! a 1-bit greyscale image needs only IHDR, one zlib-compressed IDAT and IEND, which is less
//! code than pulling in an image library.

use ct_codecs::{Base64, Encoder};
use flate2::write::ZlibEncoder;
use flate2::{Compression, Crc};
use qrcode::{Color, EcLevel, QrCode};
use std::io::Write;

/// Pixels per QR module; 4 modules of white border (the quiet zone the standard requires).
const SCALE: usize = 6;
const QUIET: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrError(pub String);

impl std::fmt::Display for QrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QrError {}

/// Level M survives a smudged screen and still fits a wg-quick config with a preshared key
/// in a version ≤ 15 symbol.
const LEVEL: EcLevel = EcLevel::M;

/// What the largest symbol (version 40) holds at [`LEVEL`] in byte mode. Text that mixes in
/// runs of digits may fit a little more; this is the figure to quote to users.
pub const MAX_BYTES: usize = 2331;

/// Whether `text` fits one QR code (the check [`png`] makes, without drawing anything).
pub fn fits(text: &str) -> bool {
    QrCode::with_error_correction_level(text.as_bytes(), LEVEL).is_ok()
}

/// `text` as a QR code in a PNG file.
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), LEVEL)
        .map_err(|e| QrError(format!("cannot encode as a QR code: {e}")))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let row_bytes = side.div_ceil(8);
    // Filter byte 0 then bits, most significant first; 1 = white.
    let mut raw = Vec::with_capacity(side * (row_bytes + 1));
    for y in 0..side {
        raw.push(0);
        let my = (y / SCALE).checked_sub(QUIET).filter(|m| *m < modules);
        let mut byte = 0u8;
        for x in 0..side {
            let mx = (x / SCALE).checked_sub(QUIET).filter(|m| *m < modules);
            let dark = match (mx, my) {
                (Some(mx), Some(my)) => colors[my * modules + mx] == Color::Dark,
                _ => false,
            };
            byte = (byte << 1) | u8::from(!dark);
            if x % 8 == 7 {
                raw.push(byte);
                byte = 0;
            }
        }
        if !side.is_multiple_of(8) {
            raw.push(byte << (8 - side % 8));
        }
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    z.write_all(&raw)
        .map_err(|e| QrError(format!("compressing the image: {e}")))?;
    let idat = z
        .finish()
        .map_err(|e| QrError(format!("compressing the image: {e}")))?;

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let side = u32::try_from(side).map_err(|_| QrError("image too large".into()))?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    // bit depth 1, colour type 0 (greyscale), deflate, adaptive filtering, no interlace
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// `data:image/png;base64,…` for the API's `qrcode` field.
pub fn data_url(text: &str) -> Result<String, QrError> {
    let png = png(text)?;
    let b64 = Base64::encode_to_string(&png).map_err(|_| QrError("base64".into()))?;
    Ok(format!("data:image/png;base64,{b64}"))
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // Chunks here are at most a few hundred KiB; the length always fits.
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes our PNG with the `png` crate and the QR code in it with `rqrr`, two
    /// implementations independent of the ones that made it.
    fn scan(png_bytes: &[u8]) -> String {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("valid PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let (w, h) = (info.width as usize, info.height as usize);
        let stride = info.line_size;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        grids[0].decode().expect("decodes").1
    }

    #[test]
    fn a_client_config_scans_back_exactly() {
        let conf = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\
                    Address = 10.8.0.2/32, fd00:8::2/128\nDNS = 10.8.0.1, fd00:8::1\nMTU = 1420\n\n\
                    [Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n\
                    PresharedKey = /UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=\n\
                    Endpoint = [2001:db8::1]:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n\
                    PersistentKeepalive = 25\n";
        let bytes = png(conf).expect("png");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(scan(&bytes), conf);
        assert!(bytes.len() < 8 * 1024, "compressed: {} bytes", bytes.len());
    }

    #[test]
    fn data_url_form() {
        let url = data_url("hello").expect("url");
        assert!(
            url.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{url}"
        );
    }

    #[test]
    fn too_much_text_is_an_error_not_a_panic() {
        let e = png(&"x".repeat(4000)).unwrap_err();
        assert!(e.0.contains("QR"), "{e}");
    }

    #[test]
    fn fits_is_what_png_can_draw() {
        let at_most = "x".repeat(MAX_BYTES);
        assert!(fits(&at_most) && png(&at_most).is_ok());
        let over = "x".repeat(MAX_BYTES + 1);
        assert!(!fits(&over) && png(&over).is_err());
    }
}
