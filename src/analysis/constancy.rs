//! Constancy against a baseline: ΔHU per material, per-material tolerance, Pearson r, ΔRED.
