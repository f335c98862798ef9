//! `hu-red analyze`.
