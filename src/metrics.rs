//! The service's counters for `/metrics` (Prometheus): what the SCP did since the process
//! started. Counts the database holds (runs by verdict, the outbox, the last run of each
//! scanner) are read from it when `/metrics` is asked (`web::ops`), so they survive restarts.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the SCP's associations (cheap: relaxed atomics).
#[derive(Debug, Default)]
pub struct Metrics {
    instances_stored: AtomicU64,
    instances_failed: AtomicU64,
    associations: AtomicU64,
}

/// A reading of [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// C-STORE answered success (file and row durable).
    pub instances_stored: u64,
    /// C-STORE answered with a failure status.
    pub instances_failed: u64,
    /// Associations accepted.
    pub associations: u64,
}

impl Metrics {
    pub fn stored(&self) {
        self.instances_stored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.instances_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn association(&self) {
        self.associations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            instances_stored: self.instances_stored.load(Ordering::Relaxed),
            instances_failed: self.instances_failed.load(Ordering::Relaxed),
            associations: self.associations.load(Ordering::Relaxed),
        }
    }
}
