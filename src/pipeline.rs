//! The offline pipeline: load a series, plan, load the slab, measure, evaluate constancy.
