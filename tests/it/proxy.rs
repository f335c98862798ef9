//! The reverse-proxy example works: Debian's nginx runs `deploy/reverse-proxy/nginx.conf` (its
//! ports, certificate paths and upstream rewritten for the test: a self-signed certificate made
//! with openssl, free loopback ports) in front of the real `hu-red serve`; curl talks to it over
//! HTTPS. Plain HTTP is redirected, `/healthz` and `/metrics` pass for loopback, a login through
//! the proxy works (the session cookie comes back Secure when `web.secure_cookies` is set), and
//! the audit log records the client as the proxy forwarded it. nginx, openssl and curl missing
//! fail the test (CI installs them).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common_db::Kind;
use super::common_service::{hured, Harness};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// nginx running in the foreground on a test folder as one process (`master_process off`: no
/// worker outlives it); stopped (by its PID) when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example with the test's ports, certificate and upstream (IPv6 listeners dropped: the
/// test host may have none).
fn adapted_example(dir: &Path, https: u16, http: u16, web: u16) -> String {
    let example = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/reverse-proxy/nginx.conf"),
    )
    .expect("deploy/reverse-proxy/nginx.conf");
    let mut replaced = 0;
    let out: Vec<String> = example
        .lines()
        .filter(|l| !l.contains("[::]"))
        .map(|l| {
            let t = l.trim_start();
            let new = if t.starts_with("listen 443 ssl") {
                format!("    listen 127.0.0.1:{https} ssl http2;")
            } else if t.starts_with("listen 80;") {
                format!("    listen 127.0.0.1:{http};")
            } else if t.starts_with("ssl_certificate ") {
                format!("    ssl_certificate {};", dir.join("cert.pem").display())
            } else if t.starts_with("ssl_certificate_key ") {
                format!("    ssl_certificate_key {};", dir.join("key.pem").display())
            } else if t.contains("proxy_pass http://127.0.0.1:8080;") {
                l.replace("127.0.0.1:8080", &format!("127.0.0.1:{web}"))
            } else {
                return l.to_string();
            };
            replaced += 1;
            new
        })
        .collect();
    assert_eq!(
        replaced, 6,
        "the example's listen, certificate and proxy_pass lines changed: adapt this test"
    );
    out.join("\n")
}

fn start_nginx(dir: &Path, https: u16, http: u16, web: u16) -> Nginx {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=hu-red.hospital.example", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(
        dir.join("hu-red.conf"),
        adapted_example(dir, https, http, web),
    )
    .unwrap();
    let d = dir.display();
    let conf = format!(
        "user root;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n  include {d}/hu-red.conf;\n}}\n"
    );
    fs::write(dir.join("nginx.conf"), conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Command::new(p).arg("-v").output().is_ok())
        .expect("nginx (Debian package nginx-light)");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let mut n = Nginx(child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
        if let Some(status) = n.0.try_wait().unwrap() {
            panic!(
                "nginx exited ({status}): {}",
                fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nginx did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    n
}

/// curl's output (body, or what `-w` writes) and success.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (Debian package curl)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string()
}

#[test]
fn nginx_example_proxies_the_dashboard() {
    let h = Harness::new(Kind::Sqlite);
    let mut add = hured(h.root());
    for (k, v) in h.env() {
        add.env(k, v);
    }
    let mut child = add
        .args([
            "user",
            "add",
            "alice",
            "--role",
            "physicist",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = h.serve_with(60, &[("HURED__WEB__SECURE_COOKIES", "true")]);
    let web = server.web_port();
    let (https, http) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let _nginx = start_nginx(dir.path(), https, http, web);
    let base = format!("https://127.0.0.1:{https}");

    // plain HTTP only redirects; /healthz and /metrics pass for loopback
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{http}/"),
    ]);
    assert_eq!(code, "301");
    assert_eq!(curl(&[&format!("{base}/healthz")]), "ok\n");
    assert!(curl(&[&format!("{base}/metrics")]).contains("hured_associations_total"));

    // log in through the proxy: the session cookie is Secure, HttpOnly, SameSite=Strict
    let jar = dir.path().join("jar");
    let jar = jar.to_str().unwrap();
    let form = curl(&["-c", jar, &format!("{base}/login")]);
    let headers = curl(&[
        "-b",
        jar,
        "-c",
        jar,
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--data-urlencode",
        "username=alice",
        "--data-urlencode",
        "password=correct horse battery",
        "--data-urlencode",
        &format!("csrf={}", csrf_of(&form)),
        &format!("{base}/login"),
    ]);
    let session = headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: hured_session=")
        })
        .unwrap_or_else(|| panic!("a session cookie: {headers}"));
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    let runs = curl(&["-b", jar, &format!("{base}/")]);
    assert!(runs.contains("<h1>Runs</h1>"), "{runs}");

    // five wrong passwords through the proxy lock alice: the audit log names the client as
    // forwarded and the proxy
    for _ in 0..5 {
        let form = curl(&["-c", jar, "-b", jar, &format!("{base}/login")]);
        let code = curl(&[
            "-b",
            jar,
            "-c",
            jar,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-urlencode",
            "username=alice",
            "--data-urlencode",
            "password=wrong password",
            "--data-urlencode",
            &format!("csrf={}", csrf_of(&form)),
            &format!("{base}/login"),
        ]);
        assert_eq!(code, "401");
    }
    let audit = h.rt.block_on(h.store().audit_log(10)).unwrap();
    let locked = audit
        .iter()
        .find(|a| a.entry.action == "login.locked")
        .unwrap_or_else(|| panic!("a login.locked entry: {audit:?}"));
    assert_eq!(
        locked.entry.address.as_deref(),
        Some("127.0.0.1 (via 127.0.0.1)"),
        "X-Forwarded-For recorded beside the proxy"
    );
}
