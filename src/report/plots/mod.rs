//! The report's PNG plots, drawn with plotters' bitmap backend and the DejaVu font embedded in
//! the binary (no system fonts). This room owns the four figures: the HU–RED curve
//! (`curve`), the ROI overlay (`overlay`), the ΔHU trend over runs (`trend`) and the preview
//! of an ERROR run (`preview`), one file each, and their shared look in `style` (colours,
//! fonts, the atomic PNG write, label placement, word wrap, the grey-level slice view).
//!
//! Every plot reads plain values (a `Summary`, a `HuStack`, a `Trend`) and writes one PNG
//! through a temporary file and a rename; nothing here analyses. File names are decided by
//! the caller (`report::curve_png_name`, ...).

mod curve;
mod overlay;
mod preview;
mod style;
mod trend;

pub use curve::write_curve_png;
pub use overlay::write_overlay_png;
pub use preview::write_preview_png;
pub use trend::write_trend_png;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Check the PNG's chunk structure (signature, IHDR first, IDAT, IEND last, lengths
    /// consistent) and return its (width, height).
    pub(super) fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(
            &b[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        let mut i = 8;
        let mut types: Vec<[u8; 4]> = Vec::new();
        while i + 12 <= b.len() {
            let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            types.push(b[i + 4..i + 8].try_into().unwrap());
            i += 12 + len;
        }
        assert_eq!(i, b.len(), "chunk lengths do not add up");
        assert_eq!(types.first(), Some(b"IHDR"));
        assert_eq!(types.last(), Some(b"IEND"));
        assert!(types.contains(b"IDAT"));
        // 8-bit RGB
        assert_eq!((b[24], b[25]), (8, 2));
        (
            u32::from_be_bytes(b[16..20].try_into().unwrap()),
            u32::from_be_bytes(b[20..24].try_into().unwrap()),
        )
    }

    /// Keep a copy for a look when HU_RED_KEEP_PLOTS names a folder (as the writer tests do).
    pub(super) fn keep(path: &Path) {
        if let Ok(dir) = std::env::var("HU_RED_KEEP_PLOTS") {
            let _ = std::fs::create_dir_all(&dir);
            if let Some(name) = path.file_name() {
                let _ = std::fs::copy(path, Path::new(&dir).join(name));
            }
        }
    }

    pub(super) fn only_file(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn new_file_names_follow_the_contract() {
        assert_eq!(
            crate::report::trend_png_name("cirs062"),
            "hu_red_cirs062_trend.png"
        );
        assert_eq!(
            crate::report::preview_png_name(crate::report::UNKNOWN_PHANTOM),
            "hu_red_unknown_preview.png"
        );
        assert_eq!(
            crate::report::trend_png_name("a/b c"),
            "hu_red_a_b_c_trend.png"
        );
    }
}
