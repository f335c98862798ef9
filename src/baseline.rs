//! Reading baseline CSV files (the Python script's and hu-red's own) into `analysis::Baseline`.
