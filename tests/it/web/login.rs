//! Logging in: a wrong password is a 401 form saying so; five in a row lock the user for 15
//! minutes (then even the right password is refused, saying locked); the login form needs its
//! own cookie token; the session cookie's flags.

use super::*;
use crate::common_db::{postgres_kind, Kind};
use hu_red::store::now_ms;

both!(
    wrong_passwords_are_refused_and_five_lock_the_user,
    the_login_form_needs_its_cookie_token,
    session_cookies_are_http_only_strict_and_secure_when_asked,
    after_login_the_user_goes_back_only_to_a_local_page,
);

fn failed_logins(h: &Harness, name: &str) -> (i64, Option<i64>) {
    let u =
        h.rt.block_on(h.store().get_user(name))
            .unwrap()
            .unwrap_or_else(|| panic!("no user {name}"));
    (u.failed_logins, u.locked_until)
}

/// 401 with the form and a message, no session; the fifth failure locks the user until ~15
/// minutes from now; the sixth attempt, with the right password, is refused and says locked.
/// Another user is not affected; an unknown name gets the same answer as a wrong password.
fn wrong_passwords_are_refused_and_five_lock_the_user(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(600);
    add_user(&h, PHYSICIST, "physicist");
    add_user(&h, VIEWER, "viewer");
    let web = Web::new(&h, &server);

    let r = web.try_login(PHYSICIST, "not the password", "/");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("wrong user name or password"), "{}", r.body);
    assert!(
        r.body.contains("<form method=\"post\" action=\"/login\""),
        "{}",
        r.body
    );
    assert!(
        r.set_cookie("hured_session").is_none(),
        "{:?}",
        r.set_cookies
    );
    assert_eq!(failed_logins(&h, PHYSICIST), (1, None));
    let unknown = web.try_login("nobody", "not the password", "/");
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("wrong user name or password"));

    for n in 2..=4 {
        assert_eq!(web.try_login(PHYSICIST, "still wrong", "/").status, 401);
        assert_eq!(failed_logins(&h, PHYSICIST), (n, None));
    }
    let before = now_ms();
    let fifth = web.try_login(PHYSICIST, "still wrong", "/");
    let after = now_ms();
    assert_eq!(fifth.status, 401, "{}", fifth.body);
    let (_, locked_until) = failed_logins(&h, PHYSICIST);
    let until = locked_until.expect("locked after five failures");
    let quarter = 15 * 60 * 1000;
    assert!(
        until >= before + quarter && until <= after + quarter,
        "locked for 15 minutes: until {until}, now {before}..{after}"
    );

    let sixth = web.try_login(PHYSICIST, PASSWORD, "/");
    assert_eq!(sixth.status, 401, "{}", sixth.body);
    assert!(sixth.body.contains("locked"), "{}", sixth.body);
    assert!(sixth.set_cookie("hured_session").is_none());
    assert_eq!(
        failed_logins(&h, PHYSICIST).1,
        Some(until),
        "the lock is not extended by refused attempts"
    );
    let audit = h.rt.block_on(h.store().audit_log(100)).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.entry.action == "login.locked" && a.entry.user_name == PHYSICIST),
        "{audit:?}"
    );
    // the other user logs in as usual
    let s = web.login(VIEWER);
    assert_eq!(web.get("/api/runs", &s.cookie).status, 200);
}

/// POST /login without the `hured_login` cookie, with another token in it, or without the
/// field answers 403 and counts no failure; the right pair works.
fn the_login_form_needs_its_cookie_token(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(600);
    add_user(&h, PHYSICIST, "physicist");
    let web = Web::new(&h, &server);
    let (cookie, field) = web.login_form();
    assert_eq!(
        cookie, field,
        "double submit: the cookie holds the form's token"
    );
    let (other, _) = web.login_form();
    assert_ne!(other, cookie, "a fresh token per form");
    let creds = [("username", PHYSICIST), ("password", PASSWORD)];
    let cases: [(Vec<(&str, &str)>, String); 4] = [
        (vec![("csrf", field.as_str())], String::new()),
        (
            vec![("csrf", field.as_str())],
            format!("hured_login={other}"),
        ),
        (vec![], format!("hured_login={cookie}")),
        (vec![("csrf", "")], "hured_login=".to_string()),
    ];
    for (fields, cookie_header) in &cases {
        let mut all = fields.clone();
        all.extend_from_slice(&creds);
        let r = web.post("/login", &all, cookie_header);
        assert_eq!(r.status, 403, "{fields:?} / {cookie_header:?}: {}", r.body);
        assert!(r.body.contains("CSRF"), "{}", r.body);
        assert!(r.set_cookie("hured_session").is_none());
    }
    assert_eq!(failed_logins(&h, PHYSICIST), (0, None));
    let mut all = vec![("csrf", field.as_str())];
    all.extend_from_slice(&creds);
    let r = web.post("/login", &all, &format!("hured_login={cookie}"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.cookie("hured_session").is_some_and(|t| t.len() == 64));
    let cleared = r
        .set_cookie("hured_login")
        .expect("the login cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

/// The session cookie: HttpOnly, SameSite=Strict, Path=/, no Secure by default; with
/// `HURED__WEB__SECURE_COOKIES=true` also Secure (and so is the login form's cookie).
fn session_cookies_are_http_only_strict_and_secure_when_asked(kind: Kind) {
    let h = Harness::new(kind);
    for secure in [false, true] {
        let flag = if secure { "true" } else { "false" };
        let server = h.serve_with(600, &[("HURED__WEB__SECURE_COOKIES", flag)]);
        if !secure {
            add_user(&h, PHYSICIST, "physicist");
        }
        let web = Web::new(&h, &server);
        let form = web.get("/login", "");
        let r = web.try_login(PHYSICIST, PASSWORD, "/");
        assert_eq!(r.status, 303, "{}", r.body);
        for line in [
            r.set_cookie("hured_session").expect("a session cookie"),
            form.set_cookie("hured_login").expect("a login cookie"),
        ] {
            let attrs: Vec<&str> = line.split(';').map(str::trim).skip(1).collect();
            for want in ["HttpOnly", "SameSite=Strict", "Path=/"] {
                assert!(attrs.contains(&want), "{want} in {line}");
            }
            assert_eq!(
                attrs.contains(&"Secure"),
                secure,
                "secure_cookies={secure}: {line}"
            );
        }
        let session = r.set_cookie("hured_session").unwrap();
        assert!(
            session.contains("Max-Age=43200"),
            "web.session_hours 12: {session}"
        );
    }
}

/// `next` of the login form: a local path is where the login leads; anything a browser could
/// read as another site (`//host`, a scheme, a backslash, or a tab or newline, which browsers
/// drop from URLs: `/<TAB>/host` is `//host`) leads to `/`.
fn after_login_the_user_goes_back_only_to_a_local_page(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(600);
    add_user(&h, VIEWER, "viewer");
    let web = Web::new(&h, &server);
    let cases = [
        ("/runs/7?x=1", "/runs/7?x=1"),
        ("/trends", "/trends"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("/\r/evil.example/", "/"),
        (" //evil.example/", "/"),
        ("", "/"),
    ];
    for (next, want) in cases {
        let r = web.try_login(VIEWER, PASSWORD, next);
        assert_eq!(r.status, 303, "{next:?}: {}", r.body);
        assert_eq!(r.location.as_deref(), Some(want), "next {next:?}");
        // the form shown for that `next` carries the same, safe value
        let query = form_body(&[("next", next)]);
        let form = web.get(&format!("/login?{query}"), "");
        assert!(
            form.body.contains(&format!(
                "name=\"next\" value=\"{}\"",
                want.replace('&', "&amp;")
            )),
            "{next:?}: {}",
            form.body
        );
    }
}
