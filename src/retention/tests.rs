use super::*;

#[test]
fn durations_in_minutes_hours_days_weeks() {
    let h = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
    assert_eq!(parse_duration("36h"), Ok(h(36)));
    assert_eq!(parse_duration("7d"), Ok(h(7 * 24)));
    assert_eq!(parse_duration(" 2w "), Ok(h(14 * 24)));
    assert_eq!(parse_duration("0d"), Ok(Duration::ZERO));
    for bad in [
        "", "7", "d", "7 d", "7D", "1.5d", "-1d", "7days", "1y", "7s", "+7d",
    ] {
        let e = parse_duration(bad).expect_err(bad);
        assert!(e.contains("not a duration"), "{bad}: {e}");
    }
    let e = parse_duration("36501d").unwrap_err();
    assert!(e.contains("longer than 36500 days"), "{e}");
    assert!(parse_duration("99999999999999999999w").is_err());
    assert!(parse_duration("5214w").is_ok());
    assert!(parse_duration("5215w").is_err());
    for text in ["90m", "36h", "3d", "2w", "1m"] {
        assert_eq!(format_duration(parse_duration(text).unwrap()), text);
    }
    assert_eq!(format_duration(parse_duration("7d").unwrap()), "1w");
    assert_eq!(format_duration(Duration::from_secs(61)), "61s");
}

#[test]
fn policy_from_days_and_its_cutoffs() {
    let p = Policy::from_days(7, 0);
    assert_eq!(p.unrecognised, Some(Duration::from_secs(7 * DAY)));
    assert_eq!(p.phantom, None);
    let now = 1_700_000_000_000;
    let c = p.cutoffs(now);
    assert_eq!(c.unrecognised, Some(now - 7 * 86_400_000));
    assert_eq!(c.phantom, None);
    assert_eq!(Policy::from_days(0, 0), Policy::default());
    let c = Policy::from_days(0, 30).cutoffs(now);
    assert_eq!(c.unrecognised, None);
    assert_eq!(c.phantom, Some(now - 30 * 86_400_000));
    assert_eq!(
        Policy::from_days(7, 0).describe(),
        "instances of unrecognised series after 1w, of phantom series kept"
    );
}

fn live(paths: &[&str]) -> HashSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

fn row(rel: &str) -> PurgedInstance {
    PurgedInstance {
        sop_instance_uid: rel.rsplit('/').next().unwrap_or(rel).into(),
        rel_path: rel.into(),
        size_bytes: 0,
    }
}

#[test]
fn only_plain_relative_paths_inside_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("data");
    std::fs::create_dir_all(root.join("1.2/3.4")).unwrap();
    assert_eq!(
        inside(&root, "1.2/3.4/5.dcm"),
        Ok(root.join("1.2/3.4/5.dcm"))
    );
    // a folder that is gone already is not an error: the file is gone with it
    assert!(inside(&root, "9.9/9.9/9.dcm").is_ok());
    for bad in [
        "",
        "../x.dcm",
        "1.2/../../x.dcm",
        "/etc/passwd",
        "./1.2/x.dcm",
        "1.2/./x",
    ] {
        let e = inside(&root, bad).expect_err(bad);
        assert!(e.contains("not a relative path"), "{bad}: {e}");
    }
    // a symbolic link out of data_dir
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.dcm"), b"keep me").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("1.2/link")).unwrap();
    let e = inside(&root, "1.2/link/victim.dcm").unwrap_err();
    assert!(e.contains("leads outside"), "{e}");
    let t = remove_files(
        &root,
        &[row("1.2/link/victim.dcm"), row("../outside/victim.dcm")],
        i64::MAX,
        &live(&[]),
    );
    assert_eq!(t.refused, 2);
    assert!(
        outside.join("victim.dcm").is_file(),
        "nothing outside data_dir is removed"
    );
}

#[test]
fn files_are_removed_with_the_folders_they_leave_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let series = root.join("1.2").join("1.2.3");
    std::fs::create_dir_all(&series).unwrap();
    std::fs::create_dir_all(root.join("1.2").join("1.2.4")).unwrap(); // another series of the study
    for n in ["a", "b", "c"] {
        std::fs::write(series.join(format!("{n}.dcm")), b"12345").unwrap();
    }
    let rows = [
        row("1.2/1.2.3/a.dcm"),
        row("1.2/1.2.3/b.dcm"),
        row("1.2/1.2.3/gone.dcm"),
    ];
    let t = remove_files(&root, &rows, i64::MAX, &live(&[]));
    assert_eq!(
        (t.removed, t.bytes, t.missing, t.kept, t.refused),
        (2, 10, 1, 0, 0)
    );
    assert!(series.join("c.dcm").is_file(), "a file no row named stays");
    assert!(series.is_dir(), "a folder that is not empty stays");
    let t = remove_files(&root, &[row("1.2/1.2.3/c.dcm")], i64::MAX, &live(&[]));
    assert_eq!(t.removed, 1);
    assert!(!series.exists(), "the empty series folder is removed");
    assert!(
        root.join("1.2").is_dir(),
        "the study folder still holds a series"
    );
    std::fs::remove_dir(root.join("1.2").join("1.2.4")).unwrap();
    std::fs::create_dir_all(&series).unwrap();
    std::fs::write(series.join("d.dcm"), b"x").unwrap();
    remove_files(&root, &[row("1.2/1.2.3/d.dcm")], i64::MAX, &live(&[]));
    assert!(!root.join("1.2").exists(), "an empty study folder goes too");
    assert!(root.is_dir(), "data_dir itself stays");
}

#[test]
fn files_named_again_or_written_after_the_purge_began_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    std::fs::create_dir_all(root.join("1/2")).unwrap();
    std::fs::write(root.join("1/2/a.dcm"), b"x").unwrap();
    std::fs::write(root.join("1/2/b.dcm"), b"x").unwrap();
    let before = now_ms() - 60_000;
    let t = remove_files(&root, &[row("1/2/a.dcm")], before, &live(&[]));
    assert_eq!(t.kept, 1, "written after the purge began");
    let t = remove_files(&root, &[row("1/2/b.dcm")], i64::MAX, &live(&["1/2/b.dcm"]));
    assert_eq!(t.kept, 1, "a row names it again");
    assert!(root.join("1/2/a.dcm").is_file() && root.join("1/2/b.dcm").is_file());
    assert_eq!(
        remove_file(&root, "1/2", i64::MAX, &live(&[])),
        Fate::Refused(format!("{} is a folder", root.join("1/2").display()))
    );
}

#[test]
fn leftovers_are_the_dcm_files_of_a_plain_series_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let p = PurgedSeries {
        series_instance_uid: "1.2.3".into(),
        study_instance_uid: "1.2".into(),
        instances_purged_at: 0,
    };
    assert!(leftover_rows(root, &p).is_empty(), "no folder");
    std::fs::create_dir_all(root.join("1.2/1.2.3")).unwrap();
    std::fs::write(root.join("1.2/1.2.3/1.2.3.4.dcm"), b"x").unwrap();
    std::fs::write(root.join("1.2/1.2.3/notes.txt"), b"x").unwrap();
    let rows = leftover_rows(root, &p);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].rel_path, "1.2/1.2.3/1.2.3.4.dcm");
    assert_eq!(rows[0].sop_instance_uid, "1.2.3.4");
    let odd = PurgedSeries {
        study_instance_uid: "..".into(),
        ..p.clone()
    };
    assert_eq!(series_dir(root, &odd), None);
    for bad in ["", ".", "1..2", ".1", "1.", "1/2", "1.2a"] {
        let odd = PurgedSeries {
            series_instance_uid: bad.into(),
            ..p.clone()
        };
        assert_eq!(series_dir(root, &odd), None, "{bad:?}");
    }
}
