//! ARCHITECTURE.md's module table holds: every room of `src/` has a row, and every `crate::…`
//! path in a room's code (test modules apart) names a module that the row's "may use" column
//! allows. A new dependency between rooms is a change to the table, made on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a row allows: any module, or the named ones.
#[derive(Debug)]
enum Allowed {
    Everything,
    Only(BTreeSet<String>),
}

/// The backticked names of a cell, outside parentheses (those are comments), as module names:
/// `cli/` → `cli`, `main.rs` → `main`.
fn names(cell: &str) -> Vec<String> {
    let mut depth = 0usize;
    let mut outside = String::new();
    for ch in cell.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => outside.push(ch),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|n| {
            n.trim_end_matches('/')
                .trim_end_matches(".rs")
                .trim()
                .to_string()
        })
        .collect()
}

/// The rows of the table under "## Modules": room → what it may use.
fn table(text: &str) -> BTreeMap<String, Allowed> {
    let start = text
        .find("\n## Modules")
        .expect("ARCHITECTURE.md has a \"## Modules\" section");
    let mut rows = BTreeMap::new();
    let mut header_seen = false;
    for line in text[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            if header_seen {
                break;
            }
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !header_seen {
            assert_eq!(
                cells.get(2).copied(),
                Some("may use (hu-red modules)"),
                "the module table's third column is \"may use (hu-red modules)\": {line}"
            );
            header_seen = true;
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        assert!(
            cells.len() >= 3,
            "a module table row has 3 cells or more: {line}"
        );
        let allowed = if cells[2].contains("everything") {
            Allowed::Everything
        } else {
            Allowed::Only(names(cells[2]).into_iter().collect())
        };
        let rooms = names(cells[0]);
        assert!(
            !rooms.is_empty(),
            "a row names its module in backticks: {line}"
        );
        for room in rooms {
            let allowed = match &allowed {
                Allowed::Everything => Allowed::Everything,
                Allowed::Only(s) => Allowed::Only(s.clone()),
            };
            assert!(
                rows.insert(room.clone(), allowed).is_none(),
                "module {room} has two rows in the table"
            );
        }
    }
    assert!(!rows.is_empty(), "the module table has no rows");
    rows
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Where a file's test module starts (`#[cfg(test)]` then `mod tests`, with or without a
/// visibility: it runs to the end of a file by the project's convention).
fn test_module_start(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]\n") {
        let at = from + i;
        let next = text[at + "#[cfg(test)]\n".len()..]
            .lines()
            .next()
            .unwrap_or("")
            .trim();
        let item = next.strip_prefix("pub").map_or(next, |rest| {
            rest.trim_start_matches(|c: char| c != ' ').trim_start()
        });
        if item.starts_with("mod tests") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The code of a file without its test module and without `//` comments.
fn production_code(text: &str) -> String {
    let text = match test_module_start(text) {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every `crate::…` path, `crate::{a, b::c}` groups included.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `hu_red::crate::` does not occur; a preceding identifier character means another
        // word (e.g. `my_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // names at the group's top level: the first identifier of each item
            let mut depth = 1usize;
            let mut item_start = true;
            let mut chars = group.char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                        let name = ident(&group[k..]);
                        for _ in 1..name.chars().count() {
                            chars.next();
                        }
                        out.insert(name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The room of a file under src/: its first path component (`report/email.rs` → `report`,
/// `worker.rs` → `worker`).
fn room_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let first = rel
        .components()
        .next()
        .expect("a path component")
        .as_os_str()
        .to_string_lossy()
        .to_string();
    first.trim_end_matches(".rs").to_string()
}

/// A file of unit tests: `tests.rs`, `*_tests.rs`, or any file under a `tests/` folder of a
/// module (`src/simulate/tests/images.rs`).
fn is_test_file(src: &Path, file: &Path) -> bool {
    let name = file.file_name().map(|n| n.to_string_lossy().to_string());
    name.as_deref()
        .is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs"))
        || file
            .strip_prefix(src)
            .map(|rel| {
                rel.parent()
                    .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"))
            })
            .unwrap_or(false)
}

/// The items a file names from `crate::config` (`crate::config::X`, `crate::config::{X, Y}`).
fn config_items(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::config::") {
        let rest = &code[i + "crate::config::".len()..];
        let list = match rest.strip_prefix('{') {
            Some(group) => &group[..group.find('}').unwrap_or(group.len())],
            None => rest,
        };
        for item in list.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            if !rest.starts_with('{') {
                break;
            }
        }
    }
    out
}

/// The production files of `src/` with their room (test files and lib.rs apart).
fn production_files() -> Vec<(String, PathBuf)> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter(|f| !is_test_file(&src, f))
        .map(|f| (room_of(&src, &f), f))
        .filter(|(room, _)| room != "lib")
        .collect()
}

/// Rooms never see the whole configuration: `Config` is read and validated once (`cli`,
/// `service`) and turned into each room's settings; a room may name its own section's type.
#[test]
fn only_the_front_ends_see_the_whole_configuration() {
    let mut problems = Vec::new();
    for (room, file) in production_files() {
        if ["cli", "main", "service", "config"].contains(&room.as_str()) {
            continue;
        }
        let code = production_code(&fs::read_to_string(&file).expect("a source file"));
        for item in config_items(&code) {
            if item == "Config" || item == "ValidConfig" {
                problems.push(format!(
                    "{} names crate::config::{item}: give the room its settings instead",
                    file.strip_prefix(root()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let items = config_items(
        "use crate::config::{MailConfig, Config};\nfn f(c: &crate::config::ValidConfig) {}",
    );
    assert_eq!(
        items.into_iter().collect::<Vec<_>>(),
        ["Config", "MailConfig", "ValidConfig"]
    );
}

#[test]
fn every_import_between_rooms_is_allowed_by_the_module_table() {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = table(&text);
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut rooms = BTreeSet::new();
    for file in &files {
        let room = room_of(&src, file);
        if room == "lib" {
            continue;
        }
        if is_test_file(&src, file) {
            continue;
        }
        rooms.insert(room.clone());
        let Some(allowed) = rows.get(&room) else {
            continue;
        };
        let code = production_code(&fs::read_to_string(file).expect("a source file"));
        for used in crate_paths(&code) {
            let ok = used == room
                || match allowed {
                    Allowed::Everything => true,
                    Allowed::Only(s) => s.contains(&used),
                };
            if !ok {
                problems.push(format!(
                    "{} uses crate::{used}, which the row of `{room}` in ARCHITECTURE.md does not allow",
                    file.strip_prefix(root()).unwrap_or(file).display()
                ));
            }
        }
    }
    for room in &rooms {
        if !rows.contains_key(room) {
            problems.push(format!(
                "src/{room} has no row in ARCHITECTURE.md's module table"
            ));
        }
    }
    for row in rows.keys() {
        if !rooms.contains(row) {
            problems.push(format!(
                "ARCHITECTURE.md's module table has a row for `{row}`, which is not a module of src/"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: paths, groups, comments, test modules, parenthesised notes.
#[test]
fn the_checker_reads_paths_groups_and_rows() {
    let code = production_code(
        "use crate::a::X;\nuse crate::{b, c::{D, E}, d::F};\n// crate::commented\nfn f() { crate::e::g(); my_crate::h(); }\n#[cfg(test)]\nfn only_in_tests() { crate::u::v(); }\n#[cfg(test)]\npub(super) mod tests {\n    use crate::t;\n}\n",
    );
    let got: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "d", "e", "u"]);
    let rows = table(
        "x\n## Modules\n\n| module | owns | may use (hu-red modules) | crates |\n|---|---|---|---|\n| `main.rs`, `cli/` | x | everything | any |\n| `report` | x | `analysis`, `pipeline` (its `Timings`) | y |\n| `scp` | x | — | z |\n\nafter\n",
    );
    assert!(matches!(rows.get("main"), Some(Allowed::Everything)));
    assert!(matches!(rows.get("cli"), Some(Allowed::Everything)));
    match rows.get("report") {
        Some(Allowed::Only(s)) => assert_eq!(
            s.iter().map(String::as_str).collect::<Vec<_>>(),
            ["analysis", "pipeline"]
        ),
        other => panic!("report row: {other:?}"),
    }
    match rows.get("scp") {
        Some(Allowed::Only(s)) => assert!(s.is_empty()),
        other => panic!("scp row: {other:?}"),
    }
}
