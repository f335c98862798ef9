//! hu-red: CT HU-to-relative-electron-density calibration QA.
//!
//! See ARCHITECTURE.md for the module map and the data flow.

pub mod actions;
pub mod analysis;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod dicom;
pub mod durable;
pub mod health;
pub mod identity;
pub mod metrics;
pub mod notify;
pub mod phantom;
pub mod pipeline;
pub mod qa;
pub mod report;
pub mod retention;
pub mod scp;
pub mod scu;
pub mod series;
pub mod service;
pub mod simulate;
pub mod store;
pub mod supervisor;
pub mod users;
pub mod web;
