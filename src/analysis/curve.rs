//! The HU → RED table and its piecewise-linear interpolant.
