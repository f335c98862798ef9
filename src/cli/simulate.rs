//! `hu-red simulate`.
