//! The real Catphan 504 cone-beam CT shipped in pylinac 1.0.3's sdist (fetched from PyPI in test
//! setup, sha256-checked, cached; see tests/common). Facts about the scan: README "Test data".

mod common;

use std::fs;

#[test]
fn fetch_is_checked_and_idempotent() {
    let dir = common::fetch_pylinac_catphan();
    assert!(dir.ends_with("High quality head"), "{}", dir.display());
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 65);
    assert_eq!(names.iter().filter(|n| n.starts_with("CT.")).count(), 64);
    assert_eq!(names.iter().filter(|n| n.starts_with("RS.")).count(), 1);
    // A second call (the cached path) gives the same folder.
    assert_eq!(common::fetch_pylinac_catphan(), dir);
    // The sdist in the cache is the pinned one.
    let sdist = common::testdata_dir().join(common::PYLINAC_SDIST_NAME);
    assert_eq!(common::sha256_file(&sdist), common::PYLINAC_SDIST_SHA256);
}
