//! Command-line front ends (anyhow lives here, not in the library modules).

pub mod analyze;
pub mod send;
pub mod simulate;
