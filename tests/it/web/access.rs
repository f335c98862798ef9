//! Who may read and who may act: pages and `/api/*` need a session unless `web.public_read`;
//! an action needs a physicist's session and the session's CSRF token; a baseline set from the
//! dashboard says who set it (table, audit log, `hu-red baseline show|history`).

use super::*;
use crate::common_db::{postgres_kind, Kind};
use hu_red::store::BaselineFilter;

both!(
    reading_needs_a_session_unless_public_read,
    actions_need_the_session_csrf_token_and_a_physicist,
);

fn pages(id: i64) -> Vec<String> {
    [
        "/",
        &format!("/runs/{id}"),
        "/trends",
        "/baselines",
        "/series",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Without a session: `/api/runs` and `/api/runs/{id}` answer 401, every page redirects (303)
/// to `/login?next=PAGE`. With `HURED__WEB__PUBLIC_READ=true` the same requests answer 200,
/// and the actions still answer 403.
fn reading_needs_a_session_unless_public_read(kind: Kind) {
    let h = Harness::new(kind);
    let mut server = h.serve(1);
    let id = one_run(&h, &server, "s1", 31);
    let web = Web::new(&h, &server);
    for api in ["/api/runs".to_string(), format!("/api/runs/{id}")] {
        let r = web.get(&api, "");
        assert_eq!(r.status, 401, "{api}: {}", r.body);
        assert!(r.body.contains("log in"), "{api}: {}", r.body);
    }
    for page in pages(id) {
        let r = web.get(&page, "");
        assert_eq!(r.status, 303, "{page}: {}", r.body);
        // no other site may frame a page or run script in it
        assert_eq!(r.frame_options.as_deref(), Some("DENY"), "{page}");
        let csp = r.csp.unwrap_or_default();
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{page}: {directive} in {csp:?}");
        }
        let next = page.replace('?', "%3F").replace('=', "%3D");
        assert_eq!(
            r.location.as_deref(),
            Some(format!("/login?next={next}").as_str()),
            "{page}"
        );
    }
    // the query is kept in `next`
    let r = web.get("/?verdict=NONE", "");
    assert_eq!(
        r.location.as_deref(),
        Some("/login?next=/%3Fverdict%3DNONE")
    );
    // and the login form sends the user back there
    add_user(&h, VIEWER, "viewer");
    let r = web.try_login(VIEWER, PASSWORD, &format!("/runs/{id}"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location, Some(format!("/runs/{id}")));
    server.kill();

    let server = h.serve_with(1, &[("HURED__WEB__PUBLIC_READ", "true")]);
    let web = Web::new(&h, &server);
    for page in pages(id) {
        let r = web.get(&page, "");
        assert_eq!(r.status, 200, "{page} with public_read: {}", r.body);
        assert!(r.body.contains("Log in"), "{page}: a link to log in");
    }
    let run_page = web.get(&format!("/runs/{id}"), "");
    assert!(run_page.body.contains("table id=\"materials\""));
    assert!(
        !run_page.body.contains("set-baseline"),
        "no action buttons without a session"
    );
    let r = web.get("/api/runs", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let runs: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(runs[0]["id"], id);
    let r = web.get(&format!("/api/runs/{id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    for action in [format!("/runs/{id}/baseline"), format!("/runs/{id}/resend")] {
        for fields in [&[][..], &[("csrf", "0123456789abcdef")][..]] {
            let r = web.post(&action, fields, "");
            assert_eq!(
                r.status, 403,
                "{action} {fields:?} without a session: {}",
                r.body
            );
        }
    }
    let baselines =
        h.rt.block_on(h.store().list_baselines(&BaselineFilter {
            history: true,
            ..BaselineFilter::default()
        }))
        .unwrap();
    assert!(baselines.is_empty(), "{baselines:?}");
}

/// The three actions without the session's CSRF token answer 403; a viewer's action with it
/// answers 403; a physicist's sets the baseline (303 to /baselines), which shows who set it,
/// as do the audit log and `hu-red baseline show|history`. Logging out ends the session.
fn actions_need_the_session_csrf_token_and_a_physicist(kind: Kind) {
    let h = Harness::new(kind);
    let server = h.serve(1);
    let id = one_run(&h, &server, "s1", 32);
    add_user(&h, PHYSICIST, "physicist");
    add_user(&h, VIEWER, "viewer");
    let web = Web::new(&h, &server);
    let phys = web.login(PHYSICIST);
    let viewer = web.login(VIEWER);
    assert_ne!(phys.csrf, viewer.csrf, "a CSRF token per session");

    let baseline = format!("/runs/{id}/baseline");
    let resend = format!("/runs/{id}/resend");
    for path in [&baseline, &resend, &"/logout".to_string()] {
        for csrf in [None, Some(""), Some(viewer.csrf.as_str())] {
            let fields: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
            let r = web.post(path, &fields, &phys.cookie);
            assert_eq!(r.status, 403, "{path} with csrf {csrf:?}: {}", r.body);
            assert!(r.body.contains("CSRF"), "{path}: {}", r.body);
        }
    }
    assert_eq!(
        web.get("/", &phys.cookie).status,
        200,
        "still logged in: the refused logout did nothing"
    );
    for path in [&baseline, &resend] {
        let r = web.post(path, &[("csrf", &viewer.csrf)], &viewer.cookie);
        assert_eq!(r.status, 403, "a viewer's {path}: {}", r.body);
        assert!(r.body.contains("viewer"), "{}", r.body);
    }
    let viewer_page = web.get(&format!("/runs/{id}"), &viewer.cookie);
    assert!(
        !viewer_page.body.contains("set-baseline"),
        "no button for a viewer"
    );
    let none =
        h.rt.block_on(h.store().list_baselines(&BaselineFilter {
            history: true,
            ..BaselineFilter::default()
        }))
        .unwrap();
    assert!(
        none.is_empty(),
        "nothing refused changed anything: {none:?}"
    );

    // the physicist's resend is done (and said on the run's page)
    let r = web.post(&resend, &[("csrf", &phys.csrf)], &phys.cookie);
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.clone().unwrap_or_default();
    assert!(to.starts_with(&format!("/runs/{id}?done=report")), "{to}");
    let page = web.get(&to, &phys.cookie);
    assert!(
        page.body.contains("<p class=\"ok\">report "),
        "{}",
        page.body
    );
    let audit = h.rt.block_on(h.store().audit_log(100)).unwrap();
    assert!(
        audit.iter().any(|a| a.entry.action == "report.resend"
            && a.entry.user_name == PHYSICIST
            && a.entry.target.as_deref() == Some(format!("run {id}").as_str())),
        "{audit:?}"
    );

    let r = web.post(
        &baseline,
        &[("csrf", &phys.csrf), ("note", "after the tube change")],
        &phys.cookie,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.clone().unwrap_or_default();
    assert!(to.starts_with("/baselines?done="), "{to}");
    let page = web.get(&to, &phys.cookie);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("baseline #1 set from run"),
        "{}",
        page.body
    );
    let active = section(&page.body, "id=\"active-baselines\"");
    assert!(
        active.contains(&format!("<td class=\"set-by\">{PHYSICIST}</td>")),
        "{active}"
    );
    assert_baseline_recorded(&h, id);

    // logging out ends the session on the server, not only in the browser
    let r = web.post("/logout", &[("csrf", &phys.csrf)], &phys.cookie);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert!(r
        .set_cookie("hured_session")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(web.get("/api/runs", &phys.cookie).status, 401);
    assert_eq!(
        web.get("/", &viewer.cookie).status,
        200,
        "other sessions live on"
    );
}

/// The part of `html` from `marker` to the end of its table.
fn section<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let end = html[at..].find("</table>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

/// The baseline from run `id` in the database (set_by, note), the audit row, and the CLI.
fn assert_baseline_recorded(h: &Harness, id: i64) {
    let all =
        h.rt.block_on(h.store().list_baselines(&BaselineFilter::default()))
            .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let b = &all[0];
    assert_eq!(b.run_id, Some(id));
    assert_eq!(b.set_by.as_deref(), Some(PHYSICIST));
    assert_eq!(b.note.as_deref(), Some("after the tube change"));
    let audit = h.rt.block_on(h.store().audit_log(100)).unwrap();
    let set: Vec<_> = audit
        .iter()
        .filter(|a| a.entry.action == "baseline.set")
        .collect();
    assert_eq!(set.len(), 1, "{audit:?}");
    let e = &set[0].entry;
    assert_eq!(e.user_name, PHYSICIST);
    assert_eq!(
        e.target.as_deref(),
        Some(format!("baseline {}", b.id).as_str())
    );
    assert_eq!(e.address.as_deref(), Some("127.0.0.1"));
    assert!(
        e.detail
            .as_deref()
            .is_some_and(|d| d.contains(&format!("from run {id}"))),
        "{e:?}"
    );
    for what in ["show", "history"] {
        let out = h.cli(&["baseline", what]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "baseline {what}: {text}");
        let source = text
            .lines()
            .find(|l| l.trim_start().starts_with("source: run"))
            .unwrap_or_default();
        assert!(
            source.contains(&format!(" by {PHYSICIST}")),
            "hu-red baseline {what} says who set it:\n{text}"
        );
    }
    let out = h.cli(&["baseline", "history"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("baseline.set by {PHYSICIST} from 127.0.0.1")),
        "hu-red baseline history shows the audit entries:\n{text}"
    );
}
