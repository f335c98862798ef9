//! Command-line front ends (anyhow lives here, not in the library modules).

pub mod analyze;
pub mod runs;
pub mod send;
pub mod serve;
pub mod simulate;
