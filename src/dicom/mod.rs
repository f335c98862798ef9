//! Reading DICOM series: scan, group by series, sort, decode to HU (overview and full resolution).
