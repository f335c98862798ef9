//! Synthetic phantom CT series with known ground truth (`hu-red simulate`).
