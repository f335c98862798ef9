//! Command-line front ends (anyhow lives here, not in the library modules).

pub mod analyze;
pub mod baseline;
pub mod purge;
pub mod report;
pub mod runs;
pub mod send;
pub mod serve;
pub mod simulate;
pub mod user;

use crate::config::{Config, ValidConfig};
use crate::store::Store;
use anyhow::{bail, Context};
use std::path::PathBuf;

/// Load and validate the configuration named by `--config` (or the defaults) with the env
/// overrides applied: every command that reads the service's configuration.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<ValidConfig> {
    Ok(Config::load(path.map(|p| p.as_path()))?.validated()?)
}

/// A one-shot command's async runtime.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Open the service's database for a one-shot command: a SQLite file must exist already (a
/// typo in the path must not create an empty database that then reports "nothing there").
pub(crate) async fn open_existing_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database.url.as_str();
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or(rest);
        let in_memory = path.contains(":memory:") || url.contains("mode=memory");
        if !in_memory && !std::path::Path::new(path).is_file() {
            bail!(
                "no database at {path} (database.url = {url}): run `hu-red serve` with this \
                 configuration first, or give the configuration it uses with --config"
            );
        }
    }
    Ok(Store::connect(url).await?)
}
