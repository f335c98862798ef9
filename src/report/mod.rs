//! Report writers: CSV, strict JSON summary, PNG plots (curve, overlay), console table.
