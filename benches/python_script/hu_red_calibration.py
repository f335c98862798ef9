#!/usr/bin/env python3
"""hu_red_calibration.py -- A RE-IMPLEMENTATION FOR TIMING ONLY, NOT THE ORIGINAL SCRIPT.

hu-red replaces a Python script of the same name (pydicom + scipy + scikit-image) that this project
does not have. This file re-implements the algorithm that script's documentation describes
(shared reference "python-script.md": command line, files written, algorithm steps 1-6), with the
same libraries, so that benches/python_compare.sh can time hu-red against the same work on the
same series:

1. read every file (a folder searched recursively), keep CT images with pixel data, sort by
   ImagePositionPatient z (else InstanceNumber), HU = raw x slope + intercept;
2. per slice a body mask: HU > -400, closing, hole filling, objects touching the image border
   dropped, largest component; the slice with the largest body area (the first on a plateau);
3. blob detection (Laplacian of Gaussian) on the edge magnitude of that one slice, radius
   4-40 px, blobs merged within 10 px;
4. auto-detection: body circularity < 0.80 -> easycube; otherwise >= 9 blobs -> cirs062,
   6-8 -> catphan_ctp404;
5. ROI = circle of 0.65 x the detected radius, mean and std on that single slice;
6. materials assigned to blobs by HU proximity (Hungarian assignment), position not used;
then the CSV, the JSON summary (NaN written as NaN, as the original does), the curve PNG
(matplotlib), the overlay PNG with --debug-overlay, and the baseline comparison.

The documented defects of the original are part of its algorithm and are kept (single slice,
pixel-based limits, HU-only matching, a "foam" insert instead of PMP in CTP404, always exit 0).
Where the documentation leaves a detail open (structuring elements, LoG threshold, which blobs
count as inserts) the choice here is the plainest one that finds the inserts of hu-red's
simulated series. Do not use it for QA, and do not read its numbers as the original's.
"""

import argparse
import csv
import json
import math
import os
import sys

import numpy as np
import pydicom
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from skimage import feature, filters, measure, segmentation

BUILTIN = {
    "cirs062": {
        "roi_radius_fraction": 0.65,
        "inserts": [
            {"name": "lung_inhale", "red": 0.19, "hu_hint": -800},
            {"name": "lung_exhale", "red": 0.489, "hu_hint": -500},
            {"name": "adipose", "red": 0.949, "hu_hint": -80},
            {"name": "breast", "red": 0.976, "hu_hint": -45},
            {"name": "water", "red": 1.0, "hu_hint": 0},
            {"name": "muscle", "red": 1.043, "hu_hint": 40},
            {"name": "liver", "red": 1.052, "hu_hint": 55},
            {"name": "trabecular_bone", "red": 1.117, "hu_hint": 220},
            {"name": "dense_bone", "red": 1.456, "hu_hint": 950},
        ],
    },
    "easycube": {
        "roi_radius_fraction": 0.65,
        "inserts": [
            {"name": "lung", "red": 0.2, "hu_hint": -750},
            {"name": "adipose", "red": 0.97, "hu_hint": -100},
            {"name": "water", "red": 1.0, "hu_hint": 0},
            {"name": "muscle", "red": 1.07, "hu_hint": 50},
            {"name": "bone", "red": 1.58, "hu_hint": 800},
        ],
    },
    # The original's (wrong) CTP404 table: a "foam" insert, no PMP.
    "catphan_ctp404": {
        "roi_radius_fraction": 0.65,
        "inserts": [
            {"name": "air", "red": 0.001, "hu_hint": -1000},
            {"name": "foam", "red": 0.2, "hu_hint": -800},
            {"name": "ldpe", "red": 0.945, "hu_hint": -100},
            {"name": "polystyrene", "red": 0.998, "hu_hint": -35},
            {"name": "acrylic", "red": 1.147, "hu_hint": 120},
            {"name": "delrin", "red": 1.363, "hu_hint": 340},
            {"name": "teflon", "red": 1.868, "hu_hint": 990},
        ],
    },
}

TOLERANCES = {
    "water": 30,
    **{k: 50 for k in ["lung", "lung_inhale", "lung_exhale", "air", "dense_bone", "bone",
                       "foam", "delrin", "teflon"]},
    **{k: 40 for k in ["trabecular_bone", "adipose", "breast", "muscle", "liver", "ldpe",
                       "polystyrene", "acrylic"]},
}

META = ["SeriesDescription", "ProtocolName", "KVP", "Manufacturer", "ManufacturerModelName",
        "StationName", "StudyDate", "StudyTime", "SliceThickness"]


def log(args, level, msg):
    if args.verbose >= level:
        print(msg, file=sys.stderr)


def read_series(path):
    """Step 1: every CT image with pixel data, sorted by z (else InstanceNumber), as HU."""
    if os.path.isfile(path):
        files = [path]
    else:
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, force=True)
        except Exception:
            continue
        if getattr(ds, "Modality", None) != "CT" or "PixelData" not in ds:
            continue
        slices.append((f, ds))
    if not slices:
        raise RuntimeError(f"no CT image with pixel data under {path}")

    def key(item):
        ds = item[1]
        ipp = getattr(ds, "ImagePositionPatient", None)
        if ipp is not None and len(ipp) == 3:
            return (0, float(ipp[2]))
        return (1, float(getattr(ds, "InstanceNumber", 0) or 0))

    slices.sort(key=key)
    vol = np.stack([
        ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1) or 1)
        + float(getattr(ds, "RescaleIntercept", 0) or 0)
        for _, ds in slices
    ])
    return slices, vol


def body_mask(sl):
    """Step 2: HU > -400, closing, hole filling, border objects dropped, largest component."""
    m = sl > -400
    m = ndi.binary_closing(m, structure=np.ones((5, 5), bool))
    m = ndi.binary_fill_holes(m)
    m = segmentation.clear_border(m)
    lab, n = ndi.label(m)
    if n == 0:
        return np.zeros_like(m)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == sizes.argmax()


def detect_blobs(sl, mask):
    """Step 3: LoG blobs on the edge magnitude inside the body, radius 4-40 px, merged within
    10 px. The edge magnitude of an insert is a ring, to which the LoG responds at sigma = its
    radius; a blob counts when its centre is inside the body and not on an edge."""
    inner = ndi.binary_erosion(mask, iterations=10)
    edges = filters.sobel(ndi.gaussian_filter(np.clip(sl, -1000, 2000), 1.5)) * inner
    top = edges.max()
    if top <= 0:
        return []
    edges = edges / top
    found = feature.blob_log(edges, min_sigma=4, max_sigma=40, num_sigma=10, threshold=0.02)
    blobs = [(float(r), float(c), float(s)) for r, c, s in found]
    blobs = [b for b in blobs if 4 <= b[2] <= 40]
    merged = []
    for b in sorted(blobs, key=lambda b: -b[2]):
        for m in merged:
            if math.hypot(m[0] - b[0], m[1] - b[1]) <= 10:
                break
        else:
            merged.append(b)
    h, w = sl.shape
    out = []
    for r, c, rad in merged:
        ri, ci = int(round(r)), int(round(c))
        if 0 <= ri < h and 0 <= ci < w and inner[ri, ci] and edges[ri, ci] < 0.1:
            out.append((r, c, rad))
    return out


def circularity(mask):
    props = measure.regionprops(mask.astype(np.uint8))
    if not props or props[0].perimeter <= 0:
        return 0.0
    return 4 * math.pi * props[0].area / props[0].perimeter ** 2


def roi_stats(sl, r, c, radius):
    """Step 5: mean and std of a circle of `radius` px on one slice."""
    h, w = sl.shape
    yy, xx = np.ogrid[:h, :w]
    m = (yy - r) ** 2 + (xx - c) ** 2 <= radius ** 2
    v = sl[m]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    phantoms = dict(BUILTIN)
    phantoms.update(cfg.get("phantoms", {}))
    tol = dict(TOLERANCES)
    tol.update(cfg.get("tolerances_hu", {}))
    return phantoms, tol


def run(args):
    phantoms, tol = (load_config(args.config) if args.config else (BUILTIN, TOLERANCES))
    slices, vol = read_series(args.dicom)
    log(args, 1, f"read {len(slices)} CT slices")
    masks = [body_mask(s) for s in vol]
    areas = [int(m.sum()) for m in masks]
    idx = int(np.argmax(areas))
    sl, mask = vol[idx], masks[idx]
    ds = slices[idx][1]
    blobs = detect_blobs(sl, mask)
    log(args, 1, f"slice {idx}: body {areas[idx]} px, {len(blobs)} blobs")

    phantom = args.phantom
    if phantom == "auto":
        circ = circularity(mask)
        if circ < 0.80:
            phantom = "easycube"
        elif len(blobs) >= 9:
            phantom = "cirs062"
        elif 6 <= len(blobs) <= 8:
            phantom = "catphan_ctp404"
        else:
            raise RuntimeError(f"cannot auto-detect the phantom (circularity {circ:.2f}, "
                               f"{len(blobs)} blobs)")
        log(args, 1, f"auto-detected {phantom} (circularity {circ:.2f})")
    pdef = phantoms[phantom]
    frac = float(pdef.get("roi_radius_fraction", 0.65))
    inserts = pdef["inserts"]

    measured = []
    for r, c, rad in blobs:
        mean, std = roi_stats(sl, r, c, frac * rad)
        measured.append((r, c, rad, mean, std))
    # Step 6: Hungarian assignment by HU proximity.
    rows = {}
    if measured:
        cost = np.array([[abs(m[3] - ins["hu_hint"]) if math.isfinite(m[3]) else 1e9
                          for ins in inserts] for m in measured])
        bi, ij = linear_sum_assignment(cost)
        for b, j in zip(bi, ij):
            rows[j] = (measured[b], float(cost[b, j]))

    os.makedirs(args.outdir, exist_ok=True)
    meta = {k: (str(getattr(ds, k)) if getattr(ds, k, None) not in (None, "") else "")
            for k in META}
    meta["ReconstructionKernel"] = str(getattr(ds, "ConvolutionKernel", "") or "")
    ps = getattr(ds, "PixelSpacing", None)
    meta["PixelSpacing"] = ",".join(str(v) for v in ps) if ps is not None else ""
    csv_path = os.path.join(args.outdir, f"hu_red_{phantom}.csv")
    results = []
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(meta) + ["selected_slice_index", "phantom", "dicom_path", "insert", "red",
                                 "hu_mean", "hu_std", "center_x", "center_y", "roi_radius_px",
                                 "detected_radius_px", "assignment_cost"])
        for j, ins in enumerate(inserts):
            if j in rows:
                (r, c, rad, mean, std), cst = rows[j]
                vals = [mean, std, c, r, frac * rad, rad, cst]
            else:
                vals = [float("nan")] * 7
            results.append({"insert": ins["name"], "red": ins["red"], "hu_mean": vals[0],
                            "hu_std": vals[1], "center": (vals[2], vals[3]),
                            "roi_radius_px": vals[4]})
            w.writerow(list(meta.values()) + [idx, phantom, args.dicom, ins["name"], ins["red"]]
                       + vals)
    outputs = {"csv": csv_path}

    if not args.no_plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        pts = sorted((x["red"], x["hu_mean"], x["insert"]) for x in results
                     if x["red"] is not None and math.isfinite(x["hu_mean"]))
        fig, ax = plt.subplots(figsize=(7, 5))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o--")
            for red, hu, name in pts:
                ax.annotate(name, (red, hu), textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("RED")
        ax.set_ylabel("mean HU")
        ax.set_title(f"HU\u2013RED curve ({phantom})")
        curve = os.path.join(args.outdir, f"hu_red_{phantom}_curve.png")
        fig.savefig(curve, dpi=120)
        plt.close(fig)
        outputs["curve_png"] = curve
        if args.debug_overlay:
            fig, ax = plt.subplots(figsize=(7, 7))
            ax.imshow(sl, cmap="gray", vmin=-1000, vmax=1000)
            for x in results:
                if math.isfinite(x["hu_mean"]):
                    ax.add_patch(plt.Circle(x["center"], x["roi_radius_px"], fill=False,
                                            color="yellow"))
                    ax.text(*x["center"], x["insert"], color="yellow")
            overlay = os.path.join(args.outdir, f"hu_red_{phantom}_overlay.png")
            fig.savefig(overlay, dpi=100)
            plt.close(fig)
            outputs["overlay_png"] = overlay

    evaluation = {"has_baseline": False}
    if args.baseline:
        with open(args.baseline, newline="") as f:
            base = {row["insert"]: float(row["hu_mean"]) for row in csv.DictReader(f)}
        per, cur_v, base_v = [], [], []
        for x in results:
            b = base.get(x["insert"], float("nan"))
            d = x["hu_mean"] - b
            t = tol.get(x["insert"], 40)
            ok = math.isfinite(d) and abs(d) <= t
            per.append({"insert": x["insert"], "delta_hu": d, "tolerance_hu": t,
                        "within_tolerance": ok})
            if math.isfinite(d):
                cur_v.append(x["hu_mean"])
                base_v.append(b)
        r = float(np.corrcoef(cur_v, base_v)[0, 1]) if len(cur_v) > 1 else float("nan")
        evaluation = {"has_baseline": True, "pearson_r": r,
                      "pass": all(p["within_tolerance"] for p in per), "per_insert": per}
    summary = {"metadata": {**meta, "selected_slice_index": idx, "phantom": phantom,
                            "dicom_path": args.dicom},
               "outputs": outputs, "tolerance_evaluation": evaluation,
               "note": "re-implementation of the documented algorithm, for timing only"}
    with open(os.path.join(args.outdir, f"hu_red_{phantom}_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    print(f"Done. Phantom: {phantom}")
    print(f"Slice used: {idx}")
    for k, v in outputs.items():
        print(f"{k}: {v}")
    if evaluation["has_baseline"]:
        print(f"Baseline comparison: {'PASS' if evaluation['pass'] else 'FAIL'} | "
              f"Pearson r = {evaluation['pearson_r']:.5f}")
        for p in evaluation["per_insert"]:
            if not p["within_tolerance"]:
                print(f"- {p['insert']}: \u0394HU={p['delta_hu']:.1f} (tol \u00b1{p['tolerance_hu']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dicom", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--phantom", default="auto",
                    choices=["auto", "cirs062", "easycube", "catphan_ctp404"])
    ap.add_argument("--config")
    ap.add_argument("--baseline")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--debug-overlay", action="store_true")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args()
    try:
        run(args)
    except Exception as e:  # the original always exits 0
        print(f"Error: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
