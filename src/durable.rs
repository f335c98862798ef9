//! Durable files: what a crash or a power loss must neither lose nor show half-written. One
//! recipe for every writer of hu-red's files (received instances, result files and folders,
//! `.eml` messages): write a hidden temporary sibling, fsync it, rename it over the target,
//! fsync the folder (a rename is only durable once its folder is). Plain `std::io` errors: the
//! caller names the file and what it was for.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The hidden temporary sibling a file is written to before its rename: `dir/.NAME.tmp`.
pub fn temp_sibling(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Write `bytes` to `path` durably: temporary sibling, fsync, rename, fsync of the folder. A
/// reader sees the old file or the new one, never half of it; the temporary file is removed
/// on error.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path)?;
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Make a file written by someone else at `tmp` (a plotting library) durable at `path`:
/// fsync it, rename it, fsync the folder.
pub fn persist(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    rename(tmp, path)
}

/// Rename `from` to `to` (a file or a folder) and fsync the folder of `to`. (The folder
/// `from` leaves is not synced: a temporary entry that reappears after a crash is cleaned up
/// at the next start.)
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(parent(to))
}

/// Create `dir` and its missing ancestors; each folder created is made durable in its parent.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(up) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(up)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsync a folder: its entries (files created, renamed or removed in it) become durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder holding `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.csv");
        write(&path, b"one").expect("first write");
        write(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.csv")]);
    }

    #[test]
    fn a_failed_write_removes_its_temporary_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.csv");
        write(&path, b"old").expect("write");
        // the target is a folder now: the rename fails
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).expect("mkdir");
        fs::write(blocked.join("x"), b"x").expect("fill");
        assert!(write(&blocked, b"new").is_err());
        assert!(!temp_sibling(&blocked).expect("name").exists());
        assert_eq!(fs::read(&path).expect("read"), b"old");
    }

    #[test]
    fn persist_and_rename_move_what_was_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join(".p.png.tmp");
        fs::write(&tmp, b"png").expect("write");
        let path = dir.path().join("p.png");
        persist(&tmp, &path).expect("persist");
        assert!(!tmp.exists());
        assert_eq!(fs::read(&path).expect("read"), b"png");
        let sub = dir.path().join("sub");
        create_dir_all(&sub.join("deeper")).expect("mkdir");
        rename(&path, &sub.join("deeper").join("p.png")).expect("rename");
        assert!(sub.join("deeper").join("p.png").is_file());
        assert!(persist(&dir.path().join("missing"), &path).is_err());
    }

    #[test]
    fn temp_sibling_is_hidden_next_to_the_file() {
        assert_eq!(
            temp_sibling(Path::new("/d/x.eml")).expect("name"),
            Path::new("/d/.x.eml.tmp")
        );
        assert!(temp_sibling(Path::new("/")).is_err());
    }
}
