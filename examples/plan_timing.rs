use hu_red::analysis::{self, AnalysisOptions};
use hu_red::dicom;
use hu_red::phantom::PhantomSet;
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let set = PhantomSet::builtin();
    let series = dicom::load_series(std::path::Path::new(&dir), None).unwrap();
    let ov = series.overview(2.0).unwrap();
    for _ in 0..2 {
        let t = Instant::now();
        let p = analysis::plan(&ov, &set.phantoms, &AnalysisOptions::default());
        println!("all: {:?} {:?}", t.elapsed(), p.map(|p| p.phantom_id));
    }
    for d in &set.phantoms {
        let t = Instant::now();
        let _ = analysis::plan(&ov, std::slice::from_ref(d), &AnalysisOptions::default());
        println!("{:20} {:?}", d.id, t.elapsed());
    }
}
