//! `hu-red simulate`: write a synthetic phantom CT series with its ground truth (`truth.json`).

use crate::phantom::{PhantomDef, PhantomSet};
use crate::simulate::{
    case_holes, merge_holes, render_to_dir, HoleContent, PixelRepresentation, SimCase, SimParams,
    Syntax, Truth,
};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Write a synthetic phantom CT series (valid CT Image Storage files NNNN.dcm) and its ground
/// truth (truth.json) for tests, benchmarks and demos.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Phantom id (a built-in one, e.g. cirs062, cirs062_head, easycube, catphan_504,
    /// catphan_600, gammex_467, or one from --config); a family id (catphan_ctp404) simulates its
    /// first variant.
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
    /// A named case of unusual hole contents (repeatable; applied in order, after
    /// --rearrange, before --hole).
    #[arg(long = "case", value_enum, value_name = "CASE")]
    pub cases: Vec<SimCase>,
    /// What one hole holds, e.g. --hole centre:void_radius_mm=1.5 or
    /// --hole outer_000:empty (repeatable). Keys: material (of the definition, or foreign with
    /// hu), hu, rod_radius_mm, sleeve_hu (default: body HU), rod_gap_mm, void_radius_mm,
    /// vial_wall_mm (0 = no vial), vial_wall_hu, empty.
    #[arg(long = "hole", value_name = "HOLE:KEY=VALUE,...")]
    pub hole: Vec<String>,
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

/// The `--hole` flags, merged per hole (later flags override earlier ones key by key).
fn parse_holes(items: &[String]) -> anyhow::Result<BTreeMap<String, HoleContent>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (id, c) = HoleContent::parse_spec(item).map_err(|e| anyhow::anyhow!("--hole {e}"))?;
        merge_holes(&mut out, BTreeMap::from([(id, c)]));
    }
    Ok(out)
}

impl SimulateArgs {
    /// The library parameters these flags stand for on `def`: the cases expanded into hole
    /// contents, then the `--hole` flags over them.
    pub fn params_for(&self, def: &PhantomDef) -> anyhow::Result<SimParams> {
        let mut params = self.params()?;
        let explicit = std::mem::take(&mut params.holes);
        let mut holes = BTreeMap::new();
        for &case in &self.cases {
            merge_holes(&mut holes, case_holes(case, def, &params)?);
        }
        merge_holes(&mut holes, explicit);
        params.holes = holes;
        Ok(params)
    }

    /// The library parameters these flags stand for (without the cases, which need the
    /// definition: see [`SimulateArgs::params_for`]).
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
            holes: parse_holes(&self.hole)?,
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

/// One line per hole that is not the definition's plain insert (rod, void, vial, other or
/// foreign material, empty).
fn hole_lines(truth: &Truth) -> Vec<String> {
    let mut out = Vec::new();
    for h in &truth.holes {
        let mut parts = Vec::new();
        if h.empty {
            parts.push("empty (air)".to_string());
        } else {
            parts.push(format!("{} {} HU", h.material, h.hu));
        }
        if let Some(r) = h.rod_radius_mm {
            parts.push(format!("rod r {r} mm"));
        }
        if let Some(s) = h.sleeve_hu {
            parts.push(format!("sleeve {s} HU"));
        }
        if let Some(g) = h.rod_gap_mm {
            parts.push(format!("air gap {g} mm"));
        }
        if let Some(v) = h.void_radius_mm {
            parts.push(format!("void r {v} mm"));
        }
        if let (Some(w), Some(hu)) = (h.vial_wall_mm, h.vial_wall_hu) {
            parts.push(format!("vial wall {w} mm at {hu} HU"));
        }
        let changed = h.layout_material.as_deref() != Some(h.material.as_str());
        if parts.len() == 1 && !changed && h.in_definition {
            continue;
        }
        if !h.in_definition {
            parts.push("not in the definition".into());
        }
        if changed {
            if let Some(l) = &h.layout_material {
                parts.push(format!("layout: {l}"));
            }
        }
        out.push(format!(
            "hole {}: {}; core r {} mm",
            h.hole,
            parts.join(", "),
            h.core_radius_mm
        ));
    }
    out
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
    let params = args.params_for(def)?;
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
    for line in hole_lines(&truth) {
        println!("  {line}");
    }
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
    fn cli_cases_and_hole_flags() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("series");
        let cli = Cli::try_parse_from([
            "simulate",
            "--phantom",
            "cirs062",
            "--out",
            out.to_str().unwrap(),
            "--matrix",
            "160",
            "--pixel-mm",
            "2.5",
            "--n-slices",
            "3",
            "--case",
            "cirs-bone-rods",
            "--case",
            "cirs-site-layout",
            "--hole",
            "centre:void_radius_mm=1.5",
            "--hole",
            "centre:hu=12,void_radius_mm=2",
            "--hole",
            "inner_045:material=site_foam,hu=-950",
        ])
        .unwrap();
        let args = cli.args.clone();
        run(cli.args).unwrap();
        let truth: Truth =
            serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap())
                .unwrap();
        let c = truth.hole("centre").unwrap();
        assert_eq!((c.hu, c.void_radius_mm), (12.0, Some(2.0)));
        let rods: Vec<_> = truth
            .holes
            .iter()
            .filter(|h| h.rod_radius_mm == Some(5.0))
            .collect();
        // both dense_bone holes are rods; the site layout then puts the 1250 material in the last
        // one's rod (cases combine key by key)
        let mut mats: Vec<&str> = rods.iter().map(|h| h.material.as_str()).collect();
        mats.sort();
        assert_eq!(mats, ["dense_bone", "dense_bone_1250"]);
        assert!(rods.iter().all(|h| h.sleeve_hu == Some(0.0)));
        assert!(truth
            .holes
            .iter()
            .any(|h| h.material == "dense_bone_1250" && h.hu == 1450.0));
        let foreign: Vec<&str> = truth.foreign.iter().map(|h| h.hole.as_str()).collect();
        assert_eq!(foreign.len(), 2, "{foreign:?}");
        assert!(foreign.contains(&"inner_045"));
        let lines = hole_lines(&truth);
        assert!(lines.iter().any(|l| l.contains("empty (air)")), "{lines:?}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("hole centre: water 12 HU, void r 2 mm")));
        // the parameters say what was made (the cases are expanded into holes)
        let set = PhantomSet::builtin();
        let p = args.params_for(set.get("cirs062").unwrap()).unwrap();
        assert_eq!(p, truth.params);
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
        let e = run(parse(&["--phantom", "cirs062", "--hole", "centre"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hole") && e.contains("HOLE:key=value"), "{e}");
        let e = run(parse(&["--phantom", "cirs062", "--hole", "middle:empty"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'middle'") && e.contains("inner_090"), "{e}");
        let e = run(parse(&[
            "--phantom",
            "cirs062",
            "--hole",
            "centre:rod_radius_mm=20",
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("hole 'centre'") && e.contains("rod_radius_mm"),
            "{e}"
        );
        let e = run(parse(&[
            "--phantom",
            "easycube",
            "--case",
            "cirs-water-void",
        ]))
        .map(|_| ())
        .err();
        // easycube invents a water rod: the void case applies to it
        assert!(e.is_none(), "{e:?}");
        let e = run(parse(&[
            "--phantom",
            "catphan_ctp404",
            "--case",
            "cirs-bone-rods",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("dense_bone"), "{e}");
        assert!(Cli::try_parse_from([
            "simulate",
            "--phantom",
            "x",
            "--out",
            "y",
            "--case",
            "nope"
        ])
        .is_err());
    }
}
