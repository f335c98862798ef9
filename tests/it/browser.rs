//! The dashboard in a real browser (issue 12): Debian's `chromium`, headless, driven over
//! WebDriver by its `chromedriver` (started here on a free loopback port, ended by its PID) with
//! fantoccini. A physicist logs in through the form, opens the newest of two runs from `/`,
//! sees its materials table and result images, makes it the baseline, finds it on
//! `/baselines` with their name, and sees one ΔHU series per material on `/trends`.
//!
//! A screenshot of each page goes to `$CARGO_TARGET_DIR/test-artifacts/browser/` (the paths
//! are printed); with `HURED_SCREENSHOTS_DIR` set, those of `/`, the run and `/trends` are
//! also copied there (`HURED_SCREENSHOTS_DIR=docs/screenshots` makes the README's).
//! Missing chromium or chromedriver fails the test (install `chromium chromium-driver`).

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common_db::Kind;
use crate::common_service::*;
use crate::web::{add_user, PASSWORD, PHYSICIST};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest the whole browser scenario may take.
const SCENARIO: Duration = Duration::from_secs(300);

/// A chromedriver of this test: its own process group (so that the chromium it starts ends
/// with it), its own browser profile, ended when dropped.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
    log: PathBuf,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        for (bin, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).is_file(),
                "the browser test needs {bin}: apt-get install -y chromium chromium-driver \
                 (missing package {what}; scripts/test installs it)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("chromedriver.log");
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver")
        };
        let mut d = Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
            log,
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("chromedriver exited ({status}):\n{}", d.log_text());
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "chromedriver did not listen:\n{}",
                d.log_text()
            );
            std::thread::sleep(POLL);
        }
        d
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        });
        match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // the group of the chromedriver started here: it and the browser it started
        let pgid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let t0 = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(POLL);
            }
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/test-artifacts/browser` (else `target/...`).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts").join("browser");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Save a screenshot of the page as `name.png`; also into `HURED_SCREENSHOTS_DIR` when `docs`.
async fn screenshot(c: &Client, name: &str, docs: bool) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    let path = artifacts_dir().join(format!("{name}.png"));
    fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    if let Some(dir) = std::env::var_os("HURED_SCREENSHOTS_DIR").filter(|_| docs) {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("{name}.png"));
        fs::write(&out, &png).unwrap();
        println!("screenshot for the docs: {}", out.display());
    }
}

/// Poll until the page's path is `path`.
async fn wait_path(c: &Client, path: &str) {
    let t0 = Instant::now();
    loop {
        let url = c.current_url().await.expect("the current URL");
        if url.path() == path {
            return;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "still on {url}, waiting for {path}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn css_all(c: &Client, css: &str) -> Vec<fantoccini::elements::Element> {
    c.find_all(Locator::Css(css)).await.expect(css)
}

/// Two runs of a simulated CIRS phantom (stable_seconds 1) and a physicist.
#[test]
fn a_physicist_logs_in_reviews_a_run_and_makes_it_the_baseline() {
    let h = Harness::new(Kind::Sqlite);
    let server = h.serve(1);
    let mut ids = Vec::new();
    for (name, seed) in [("first", 61), ("second", 62)] {
        let s = cirs(&h.root().join(name), seed, 12);
        send(&server, &s.files, &[]);
        h.wait_finished(&server, &s.uid, s.n());
        ids.push(h.runs_of(&s.uid)[0].id);
    }
    let newest = ids[1];
    let materials: Vec<String> = h
        .run_detail(newest)
        .materials
        .iter()
        .map(|m| m.values.insert.clone())
        .collect();
    assert!(materials.len() > 3, "{materials:?}");
    add_user(&h, PHYSICIST, "physicist");
    let base = format!("http://127.0.0.1:{}", server.web_port());
    let driver = Driver::start(h.root());
    let caps = driver.capabilities();
    let webdriver = format!("http://127.0.0.1:{}", driver.port);
    let outcome = h.rt.block_on(async {
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("a chromium session: {e}"));
        let r = tokio::time::timeout(SCENARIO, scenario(&c, &base, newest, &materials)).await;
        let _ = c.close().await;
        r
    });
    if outcome.is_err() {
        panic!(
            "the browser scenario took over {SCENARIO:?}\n{}\n{}",
            server.log_tail(),
            driver.log_text()
        );
    }
    drop(driver);
}

async fn scenario(c: &Client, base: &str, newest: i64, materials: &[String]) {
    // not logged in: the login form, which sends the user back to `/`
    c.goto(&format!("{base}/")).await.unwrap();
    wait_path(c, "/login").await;
    screenshot(c, "login", false).await;
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(PHYSICIST)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(c, "/").await;
    let rows = css_all(c, "table#runs tbody tr").await;
    assert_eq!(rows.len(), 2, "two runs on /");
    let who = c.find(Locator::Css("header .who")).await.unwrap();
    assert!(who.text().await.unwrap().contains(PHYSICIST));
    screenshot(c, "runs", true).await;

    // the newest run is the first row: open it by its link
    let link = rows[0].find(Locator::Css("a")).await.unwrap();
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some(format!("/runs/{newest}").as_str())
    );
    link.click().await.unwrap();
    let run_path = format!("/runs/{newest}");
    wait_path(c, &run_path).await;
    run_page(c, materials).await;
    screenshot(c, "run", true).await;

    c.find(Locator::Css("button#set-baseline"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(c, "/baselines").await;
    let active = css_all(c, "table#active-baselines tbody tr").await;
    assert_eq!(active.len(), 1, "one active baseline");
    let set_by = active[0].find(Locator::Css("td.set-by")).await.unwrap();
    assert_eq!(set_by.text().await.unwrap(), PHYSICIST);
    let source = active[0].find(Locator::Css("a")).await.unwrap();
    assert_eq!(source.attr("href").await.unwrap(), Some(run_path.clone()));
    screenshot(c, "baselines", false).await;

    c.goto(&format!("{base}/series")).await.unwrap();
    let recent = css_all(c, "table#series-recent tbody tr").await;
    assert_eq!(recent.len(), 2, "both series on /series");
    screenshot(c, "series", false).await;

    // CONTRACT with the trends page: one `g.series[data-material]` per material of the run,
    // inside `svg.trend-dhu`
    c.goto(&format!("{base}/trends")).await.unwrap();
    screenshot(c, "trends", true).await;
    let mut drawn = Vec::new();
    for g in css_all(c, "svg.trend-dhu g.series[data-material]").await {
        drawn.push(g.attr("data-material").await.unwrap().unwrap_or_default());
    }
    drawn.sort();
    let mut want = materials.to_vec();
    want.sort();
    assert_eq!(drawn, want, "one ΔHU series per material on /trends");
}

/// The run page: its materials table has a row per material, and every result image loaded.
async fn run_page(c: &Client, materials: &[String]) {
    let rows = css_all(c, "table#materials tbody tr").await;
    assert_eq!(rows.len(), materials.len(), "a row per material");
    let mut shown = BTreeSet::new();
    for r in &rows {
        let first = r.find(Locator::Css("td")).await.unwrap();
        shown.insert(first.text().await.unwrap());
    }
    assert_eq!(shown, materials.iter().cloned().collect::<BTreeSet<_>>());
    let t0 = Instant::now();
    loop {
        let widths = c
            .execute(
                "return Array.from(document.querySelectorAll('img.result'))\
                 .map(i => i.complete ? i.naturalWidth : -1);",
                vec![],
            )
            .await
            .unwrap();
        let widths: Vec<i64> = serde_json::from_value(widths).unwrap();
        assert!(!widths.is_empty(), "the run page shows its images");
        if widths.iter().all(|&w| w > 0) {
            break;
        }
        assert!(
            !widths.contains(&0) && t0.elapsed() < DEADLINE,
            "every img.result loaded (naturalWidth > 0): {widths:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
