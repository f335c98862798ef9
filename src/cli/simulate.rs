//! `hu-red simulate`: write a synthetic phantom CT series with its ground truth (`truth.json`).

use crate::phantom::PhantomSet;
use crate::simulate::{render_to_dir, PixelRepresentation, SimParams, Syntax};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Write a synthetic phantom CT series (valid CT Image Storage files NNNN.dcm) and its ground
/// truth (truth.json) for tests, benchmarks and demos.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Phantom id (see `hu-red analyze --help`) or one from --config. The family id
    /// catphan_ctp404 simulates its first variant, catphan_504 (with a note on stderr).
    #[arg(long)]
    pub phantom: String,
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Site phantom file (script or hu-red format) to take the definition from.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// In-plane rotation, degrees (clockwise on screen).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rotation_deg: f64,
    /// Phantom centre right of the image centre, mm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub shift_x_mm: f64,
    /// Phantom centre below the image centre, mm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub shift_y_mm: f64,
    /// Pixel size, mm.
    #[arg(long, default_value_t = 0.8)]
    pub pixel_mm: f64,
    /// Rows = columns.
    #[arg(long, default_value_t = 512)]
    pub matrix: usize,
    #[arg(long, default_value_t = 2.0)]
    pub slice_thickness_mm: f64,
    /// Distance between slice centres [default: the thickness].
    #[arg(long)]
    pub slice_spacing_mm: Option<f64>,
    #[arg(long, default_value_t = 40)]
    pub n_slices: usize,
    /// Patient z of the insert region's centre (the series is centred on z = 0), mm.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub z_offset_mm: f64,
    /// Per-pixel noise standard deviation, HU.
    #[arg(long, default_value_t = 10.0)]
    pub noise_sigma_hu: f64,
    /// σ of the Gaussian kernel correlating the noise, mm (0 = white noise).
    #[arg(long, default_value_t = 0.0)]
    pub noise_corr_mm: f64,
    /// σ of the Gaussian blur of the ideal image, mm.
    #[arg(long, default_value_t = 0.5)]
    pub blur_mm: f64,
    /// Put a carbon-fibre/foam couch under the phantom.
    #[arg(long)]
    pub couch: bool,
    /// Air ring around each insert, mm.
    #[arg(long, default_value_t = 0.0)]
    pub air_gap_mm: f64,
    /// Store PixelPaddingValue outside the inscribed reconstruction circle.
    #[arg(long)]
    pub recon_circle: bool,
    /// HU the padding value stands for (lowest storable value if not representable).
    #[arg(long, default_value_t = -3024.0, allow_negative_numbers = true)]
    pub padding_hu: f64,
    /// Catphan: leave out the other modules (CTP528, CTP515, CTP486) along z.
    #[arg(long)]
    pub no_catphan_modules: bool,
    /// Thickness of the insert region along z (CIRS slab), mm [default: the definition's].
    #[arg(long)]
    pub slab_mm: Option<f64>,
    /// Body HU [default: the definition's].
    #[arg(long, allow_negative_numbers = true)]
    pub body_hu: Option<f64>,
    /// Per-material HU shift, e.g. --hu-offset water=35 (repeatable).
    #[arg(long = "hu-offset", value_name = "MATERIAL=HU")]
    pub hu_offset: Vec<String>,
    /// Shuffle the materials among the holes with this seed.
    #[arg(long, value_name = "SEED")]
    pub rearrange: Option<u64>,
    /// The phantom body only, with no insert.
    #[arg(long)]
    pub uniform: bool,
    #[arg(long, value_enum, default_value_t = PixelRepresentation::Signed)]
    pub pixel_representation: PixelRepresentation,
    #[arg(long, default_value_t = -1024.0, allow_negative_numbers = true)]
    pub rescale_intercept: f64,
    #[arg(long, default_value_t = 1.0)]
    pub rescale_slope: f64,
    /// Slice i uses intercept − 1000·(i mod 3).
    #[arg(long)]
    pub vary_intercept: bool,
    /// [default: explicit; implicit with --no-part10]
    #[arg(long, value_enum)]
    pub transfer_syntax: Option<Syntax>,
    /// Write raw data sets without preamble and file meta group, named IM0001, ... (no
    /// extension), as some scanners export: implicit VR little endian unless --transfer-syntax
    /// explicit is given.
    #[arg(long)]
    pub no_part10: bool,
    /// CT, or e.g. MR for a bad-input series.
    #[arg(long, default_value = "CT")]
    pub modality: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "HURED-SIM")]
    pub station_name: String,
    #[arg(long, default_value = "SIM0001")]
    pub device_serial_number: String,
    #[arg(long, default_value = "hu-red")]
    pub manufacturer: String,
    #[arg(long, default_value = "hu-red simulate")]
    pub manufacturer_model_name: String,
    #[arg(long, default_value_t = 120.0)]
    pub kvp: f64,
    /// ConvolutionKernel.
    #[arg(long, default_value = "STANDARD")]
    pub kernel: String,
    /// [default: "hu-red simulated PHANTOM"]
    #[arg(long)]
    pub series_description: Option<String>,
    #[arg(long, default_value = "QA HU-RED")]
    pub protocol_name: String,
    /// YYYYMMDD.
    #[arg(long, default_value = "20250101")]
    pub study_date: String,
    /// HHMMSS.
    #[arg(long, default_value = "090000")]
    pub study_time: String,
    #[arg(long, default_value = "QA^PHANTOM")]
    pub patient_name: String,
    #[arg(long, default_value = "HURED-QA")]
    pub patient_id: String,
    #[arg(long, default_value_t = 1)]
    pub series_number: u32,
    /// SeriesInstanceUID [default: 2.25.<from the seed and parameters>].
    #[arg(long)]
    pub series_uid: Option<String>,
    /// StudyInstanceUID [default: 2.25.<from the seed>].
    #[arg(long)]
    pub study_uid: Option<String>,
}

fn parse_offsets(items: &[String]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            bail!("--hu-offset '{item}' must be MATERIAL=HU, e.g. water=35");
        };
        let v: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--hu-offset '{item}': '{value}' is not a number"))?;
        out.insert(name.trim().to_string(), v);
    }
    Ok(out)
}

impl SimulateArgs {
    /// The library parameters these flags stand for.
    pub fn params(&self) -> anyhow::Result<SimParams> {
        Ok(SimParams {
            rotation_deg: self.rotation_deg,
            shift_x_mm: self.shift_x_mm,
            shift_y_mm: self.shift_y_mm,
            pixel_mm: self.pixel_mm,
            matrix: self.matrix,
            slice_thickness_mm: self.slice_thickness_mm,
            slice_spacing_mm: self.slice_spacing_mm,
            n_slices: self.n_slices,
            z_offset_mm: self.z_offset_mm,
            noise_sigma_hu: self.noise_sigma_hu,
            noise_corr_mm: self.noise_corr_mm,
            blur_mm: self.blur_mm,
            couch: self.couch,
            air_gap_mm: self.air_gap_mm,
            recon_circle: self.recon_circle,
            padding_hu: self.padding_hu,
            catphan_modules: !self.no_catphan_modules,
            slab_mm: self.slab_mm,
            body_hu: self.body_hu,
            hu_offsets: parse_offsets(&self.hu_offset)?,
            rearrange: self.rearrange,
            uniform: self.uniform,
            pixel_representation: self.pixel_representation,
            rescale_intercept: self.rescale_intercept,
            rescale_slope: self.rescale_slope,
            vary_intercept: self.vary_intercept,
            transfer_syntax: self.transfer_syntax.unwrap_or(if self.no_part10 {
                Syntax::Implicit
            } else {
                Syntax::Explicit
            }),
            part10: !self.no_part10,
            modality: self.modality.clone(),
            seed: self.seed,
            station_name: self.station_name.clone(),
            device_serial_number: self.device_serial_number.clone(),
            manufacturer: self.manufacturer.clone(),
            manufacturer_model_name: self.manufacturer_model_name.clone(),
            kvp: self.kvp,
            kernel: self.kernel.clone(),
            series_description: self.series_description.clone(),
            protocol_name: self.protocol_name.clone(),
            study_date: self.study_date.clone(),
            study_time: self.study_time.clone(),
            patient_name: self.patient_name.clone(),
            patient_id: self.patient_id.clone(),
            series_number: self.series_number,
            series_uid: self.series_uid.clone(),
            study_uid: self.study_uid.clone(),
        })
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let set = PhantomSet::load(args.config.as_deref())?;
    // A family id stands for its variants; a simulation needs one: the first (for the Catphan
    // family the 503/504, which `catphan_ctp404` meant before variants existed), said on stderr.
    let variants = set.resolve(&args.phantom)?;
    let Some(&def) = variants.first() else {
        bail!("phantom {:?} has no definition", args.phantom);
    };
    if set.is_family(&args.phantom) {
        eprintln!(
            "hu-red: note: {} is a family of phantoms ({}); simulating {}: use --phantom to choose another",
            args.phantom,
            variants
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            def.id
        );
    }
    let params = args.params()?;
    let started = std::time::Instant::now();
    let (paths, truth) = render_to_dir(&params, def, &args.out)?;
    println!(
        "Simulated {} ({}): {} slices of {}x{} at {} mm, {} mm thick, written to {} in {:.2} s",
        truth.phantom_id,
        if truth.uniform {
            "uniform"
        } else {
            "with inserts"
        },
        truth.n_slices,
        truth.rows,
        truth.cols,
        truth.pixel_mm,
        truth.slice_thickness_mm,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "Series {}; truth: {}",
        truth.series_uid,
        paths
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::Truth;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn cli_writes_files_and_truth() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("series");
        let cli = Cli::try_parse_from([
            "simulate",
            "--phantom",
            "catphan_ctp404",
            "--out",
            out.to_str().unwrap(),
            "--matrix",
            "128",
            "--pixel-mm",
            "2",
            "--n-slices",
            "6",
            "--rotation-deg",
            "-15",
            "--hu-offset",
            "teflon=-20",
            "--pixel-representation",
            "unsigned",
            "--transfer-syntax",
            "implicit",
            "--recon-circle",
            "--couch",
            "--seed",
            "9",
        ])
        .unwrap();
        run(cli.args).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0001.dcm",
                "0002.dcm",
                "0003.dcm",
                "0004.dcm",
                "0005.dcm",
                "0006.dcm",
                "truth.json"
            ]
        );
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap())
                .unwrap();
        // the family id simulates its first variant, the 503/504
        assert_eq!(truth.phantom_id, "catphan_504");
        assert_eq!(truth.pose.rotation_deg, -15.0);
        assert_eq!(truth.material("teflon").unwrap().hu, 980.5);
        assert_eq!(truth.storage.transfer_syntax_uid, "1.2.840.10008.1.2");
        assert_eq!(truth.params.seed, 9);
        let obj = dicom_object::open_file(out.join("0003.dcm")).unwrap();
        assert_eq!(
            obj.element(dicom_dictionary_std::tags::SERIES_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap(),
            truth.series_uid
        );
        assert_eq!(obj.meta().transfer_syntax(), "1.2.840.10008.1.2");
    }

    #[test]
    fn no_part10_writes_raw_data_sets_implicit_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        for (extra, syntax) in [
            (None, "1.2.840.10008.1.2"),
            (Some("explicit"), "1.2.840.10008.1.2.1"),
        ] {
            let out = dir.path().join(extra.unwrap_or("default"));
            let mut argv = vec![
                "simulate",
                "--phantom",
                "cirs062",
                "--out",
                out.to_str().unwrap(),
                "--matrix",
                "96",
                "--pixel-mm",
                "4",
                "--n-slices",
                "3",
                "--no-part10",
            ];
            if let Some(ts) = extra {
                argv.extend(["--transfer-syntax", ts]);
            }
            run(Cli::try_parse_from(argv).unwrap().args).unwrap();
            let mut names: Vec<String> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["IM0001", "IM0002", "IM0003", "truth.json"]);
            let truth: Truth =
                serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap())
                    .unwrap();
            assert!(!truth.storage.part10);
            assert_eq!(truth.storage.transfer_syntax_uid, syntax);
            assert_eq!(truth.slices[1].file, "IM0002");
            let bytes = std::fs::read(out.join("IM0002")).unwrap();
            assert_eq!(&bytes[0..2], &[0x08, 0x00]);
            let (obj, headerless) = crate::dicom::open_dicom_file(&out.join("IM0002")).unwrap();
            assert!(headerless);
            assert_eq!(obj.meta().transfer_syntax(), syntax);
        }
        // without --no-part10 the default stays explicit Part-10
        let args = Cli::try_parse_from(["simulate", "--phantom", "cirs062", "--out", "x"])
            .unwrap()
            .args;
        let p = args.params().unwrap();
        assert!(p.part10);
        assert_eq!(p.transfer_syntax, Syntax::Explicit);
    }

    #[test]
    fn cli_rejects_bad_input_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |extra: &[&str]| {
            let mut v = vec!["simulate", "--out", dir.path().to_str().unwrap()];
            v.extend_from_slice(extra);
            Cli::try_parse_from(v).unwrap().args
        };
        let e = run(parse(&["--phantom", "nope"])).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = run(parse(&["--phantom", "cirs062", "--hu-offset", "water"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MATERIAL=HU"), "{e}");
        let e = run(parse(&["--phantom", "cirs062", "--pixel-mm", "0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pixel_mm"), "{e}");
    }
}
