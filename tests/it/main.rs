//! The end-to-end tests in one binary (one link instead of ten): a module per area, the shared
//! harnesses first (`common`: real test data fetched from a package registry; `common_db`: the
//! SQLite and PostgreSQL test databases; `common_dicom`: DICOM objects and DCMTK encoders;
//! `common_service`: `hu-red serve` as a child process with DCMTK as its peer; `common_faults`:
//! an immutable file, a PostgreSQL cluster of one's own).

mod common;
mod common_db;
mod common_dicom;
mod common_faults;
#[macro_use]
mod common_service;

mod architecture;
mod browser;
mod cli_analyze;
mod decoders;
mod deploy;
mod engine_grid;
mod faults;
mod loader;
mod mail;
mod proxy;
mod real_catphan;
mod retention;
mod scp_dcmtk;
mod scp_slots;
mod scp_tls;
mod service;
mod store;
mod web;
