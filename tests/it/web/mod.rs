//! The dashboard over HTTP (issue 12): the real `hu-red serve` (its web server on
//! 127.0.0.1:0, the port read from its "web: listening" log line), a plain HTTP client
//! (reqwest; cookies, redirects and forms handled here, so that every header can be checked
//! and forged), users added with `hu-red user add`, series simulated and sent with DCMTK's
//! storescu. Every test runs on SQLite and on PostgreSQL (`both!`).
//!
//! - `access`: reading needs a session (or `web.public_read`), acting a physicist's session and
//!   its CSRF token; a baseline set from the dashboard is recorded with who set it.
//! - `login`: wrong passwords, the lockout, the login form's own CSRF token, cookie flags.
//! - `escaping`: text from DICOM headers is escaped on every page.
//! - `ops`: `/healthz` (a database made unusable for real) and `/metrics`.

mod access;
mod escaping;
mod login;
mod ops;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::common_service::*;

pub const PHYSICIST: &str = "marie.curie";
pub const VIEWER: &str = "viewer-1";
pub const PASSWORD: &str = "correct horse battery";

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    /// Every Set-Cookie line, whole.
    pub set_cookies: Vec<String>,
    /// Content-Security-Policy and X-Frame-Options.
    pub csp: Option<String>,
    pub frame_options: Option<String>,
    pub body: String,
}

impl Reply {
    /// The whole Set-Cookie line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }

    /// The value Set-Cookie gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let first = line.split(';').next()?;
        Some(first[name.len() + 1..].to_string())
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf_field(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker)? + marker.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_string())
    }
}

/// A logged-in user: the `Cookie` header value and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// An HTTP client of one server's web port (no redirects followed, no proxy).
pub struct Web<'a> {
    pub h: &'a Harness,
    pub base: String,
    client: reqwest::Client,
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl<'a> Web<'a> {
    pub fn new(h: &'a Harness, server: &Server) -> Web<'a> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(DEADLINE)
            .build()
            .unwrap();
        Web {
            h,
            base: format!("http://127.0.0.1:{}", server.web_port()),
            client,
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        self.h.rt.block_on(async {
            let r = req.send().await.expect("the web server answers");
            let header = |name: reqwest::header::HeaderName| {
                r.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let location = header(reqwest::header::LOCATION);
            let content_type = header(reqwest::header::CONTENT_TYPE);
            let csp = header(reqwest::header::CONTENT_SECURITY_POLICY);
            let frame_options = header(reqwest::header::X_FRAME_OPTIONS);
            let set_cookies = r
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect();
            let status = r.status().as_u16();
            let body = r.text().await.expect("the body");
            Reply {
                status,
                location,
                content_type,
                set_cookies,
                csp,
                frame_options,
                body,
            }
        })
    }

    /// GET `path` with this `Cookie` header ("" = none).
    pub fn get(&self, path: &str, cookie: &str) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if !cookie.is_empty() {
            req = req.header(reqwest::header::COOKIE, cookie);
        }
        self.send(req)
    }

    /// POST the form `fields` to `path` with this `Cookie` header ("" = none).
    pub fn post(&self, path: &str, fields: &[(&str, &str)], cookie: &str) -> Reply {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_body(fields));
        if !cookie.is_empty() {
            req = req.header(reqwest::header::COOKIE, cookie);
        }
        self.send(req)
    }

    /// GET /login: (the `hured_login` cookie's token, the form's hidden token).
    pub fn login_form(&self) -> (String, String) {
        let r = self.get("/login", "");
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r
            .cookie("hured_login")
            .expect("the login form sets its cookie");
        let field = r.csrf_field().expect("the login form has a csrf field");
        (cookie, field)
    }

    /// POST /login as the form would (its cookie and token).
    pub fn try_login(&self, user: &str, password: &str, next: &str) -> Reply {
        let (cookie, field) = self.login_form();
        self.post(
            "/login",
            &[
                ("csrf", &field),
                ("next", next),
                ("username", user),
                ("password", password),
            ],
            &format!("hured_login={cookie}"),
        )
    }

    /// Log in (asserting it works) and read the session's CSRF token from a page.
    pub fn login(&self, user: &str) -> Session {
        let r = self.try_login(user, PASSWORD, "/");
        assert_eq!(r.status, 303, "login of {user}: {}", r.body);
        assert_eq!(r.location.as_deref(), Some("/"));
        let token = r.cookie("hured_session").expect("a session cookie");
        let cookie = format!("hured_session={token}");
        let page = self.get("/series", &cookie);
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf_field().expect("the logout form's csrf field");
        Session { cookie, csrf }
    }
}

/// `hu-red user add NAME --role ROLE --password-stdin` (password [`PASSWORD`]).
pub fn add_user(h: &Harness, name: &str, role: &str) {
    let mut cmd = hured(h.root());
    for (k, v) in h.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hu-red user add");
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hu-red user add {name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small simulated CIRS series sent with storescu and analysed; its run id.
pub fn one_run(h: &Harness, server: &Server, name: &str, seed: u64) -> i64 {
    let dir = h.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let s = small(&dir, seed, 12, |_| {});
    send(server, &s.files, &[]);
    h.wait_finished(server, &s.uid, s.n());
    let runs = h.runs_of(&s.uid);
    assert_eq!(runs.len(), 1, "one run of {name}");
    runs[0].id
}

/// The `*.dcm` files of a folder, sorted.
pub fn dicom_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}
