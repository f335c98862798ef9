//! The dashboard's people: users (role, argon2id hash, failed logins, lock), their sessions
//! (stored by the SHA-256 of the cookie's token, with the session's CSRF token) and the audit
//! log of every action a person took, from the dashboard or the command line.

use super::{with_pool, RowGet, Store, StoreError};
use serde::Serialize;
use std::fmt;

text_enum! {
    /// What a dashboard user may do: viewers read; physicists also act (set a baseline,
    /// resend a report).
    Role {
        Physicist = "physicist",
        Viewer = "viewer",
    }
}

/// A stored user (the hash stays in the database layer's callers that verify passwords).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRow {
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub failed_logins: i64,
    /// Unix ms until which logins are refused (after too many failures).
    pub locked_until: Option<i64>,
}

/// A new session (see [`Store::create_session`]).
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_name: &'a str,
    pub csrf_token: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
    pub address: Option<&'a str>,
}

/// A live session and its user.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub user_name: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// One action a person took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: i64,
    /// The dashboard user, or "NAME (command line)".
    pub user_name: String,
    /// `baseline.set`, `baseline.confirm`, `report.resend`, `user.add`, `user.remove`,
    /// `login.locked`.
    pub action: String,
    /// "run 12", "baseline 4", "user alice".
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The client's address; "command line" for the CLI.
    pub address: Option<String>,
}

/// A stored [`AuditEntry`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

fn user_row(r: &impl RowGet) -> Result<UserRow, sqlx::Error> {
    let role = r.text("role")?;
    Ok(UserRow {
        name: r.text("name")?,
        role: Role::parse(&role).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown role {role:?} in the users table").into())
        })?,
        password_hash: r.text("password_hash")?,
        created_at: r.int("created_at")?,
        failed_logins: r.int("failed_logins")?,
        locked_until: r.opt_int("locked_until")?,
    })
}

impl Store {
    /// Add a user; `false` when one of that name exists (nothing changed).
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let what = format!("adding user {name}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let r = sqlx::query(
                "INSERT INTO users (name, role, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map_err(self.err(what))?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Remove a user and their sessions; `false` when there was none of that name.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let what = format!("removing user {name}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what.clone()))?;
            sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(self.err(what.clone()))?;
            let r = sqlx::query("DELETE FROM users WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(self.err(what.clone()))?;
            tx.commit().await.map_err(self.err(what))?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let what = "listing users";
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT * FROM users ORDER BY name")
                .fetch_all(pool)
                .await
                .map_err(self.err(what))?;
            rows.iter()
                .map(|r| user_row(r).map_err(self.err(what)))
                .collect()
        })
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let what = format!("reading user {name}");
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT * FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .map_err(self.err(what.clone()))?;
            row.map(|r| user_row(&r)).transpose().map_err(self.err(what))
        })
    }

    /// Count a failed login of `name`; the `max_failures`-th in a row locks the user until
    /// `lock_until` (and starts the count again). Returns the lock, if this failure set one.
    pub async fn record_login_failure(
        &self,
        name: &str,
        max_failures: i64,
        lock_until: i64,
    ) -> Result<Option<i64>, StoreError> {
        let what = format!("recording a failed login of {name}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let locked: Option<Option<i64>> = sqlx::query_scalar(
                "UPDATE users SET \
                 failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 \
                                 ELSE failed_logins + 1 END, \
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 \
                                ELSE locked_until END \
                 WHERE name = $1 RETURNING locked_until",
            )
            .bind(name)
            .bind(max_failures)
            .bind(lock_until)
            .fetch_optional(pool)
            .await
            .map_err(self.err(what))?;
            Ok(locked.flatten().filter(|&t| t == lock_until))
        })
    }

    /// A successful login: the failure count and any expired lock are cleared.
    pub async fn record_login_success(&self, name: &str) -> Result<(), StoreError> {
        let what = format!("recording the login of {name}");
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .map_err(self.err(what))?;
            Ok(())
        })
    }

    /// Store a session (expired sessions are removed at the same time).
    pub async fn create_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let what = format!("opening a session for {}", s.user_name);
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err(what.clone()))?;
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(s.created_at)
                .execute(&mut *tx)
                .await
                .map_err(self.err(what.clone()))?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_name, csrf_token, created_at, \
                 expires_at, address) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(s.token_hash)
            .bind(s.user_name)
            .bind(s.csrf_token)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(s.address)
            .execute(&mut *tx)
            .await
            .map_err(self.err(what.clone()))?;
            tx.commit().await.map_err(self.err(what))?;
            Ok(())
        })
    }

    /// The live session of a token hash, with its user's current role.
    pub async fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let what = "reading a session";
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT s.user_name, u.role, s.csrf_token, s.expires_at FROM sessions s \
                 JOIN users u ON u.name = s.user_name \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(self.err(what))?;
            let Some(r) = row else { return Ok(None) };
            let role = r.text("role").map_err(self.err(what))?;
            Ok(Some(SessionRow {
                user_name: r.text("user_name").map_err(self.err(what))?,
                role: Role::parse(&role)
                    .ok_or_else(|| self.data_err(what, format!("unknown role {role:?}")))?,
                csrf_token: r.text("csrf_token").map_err(self.err(what))?,
                expires_at: r.int("expires_at").map_err(self.err(what))?,
            }))
        })
    }

    /// Log out: the session is gone.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let what = "closing a session";
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await
                .map_err(self.err(what))?;
            Ok(())
        })
    }

    /// Record an action in the audit log.
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        let what = format!("recording {} by {} in the audit log", e.action, e.user_name);
        let _writing = self.write_guard().await;
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO audit (at, user_name, action, target, detail, address) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(e.at)
            .bind(&e.user_name)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.detail)
            .bind(&e.address)
            .fetch_one(pool)
            .await
            .map_err(self.err(what))
        })
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let what = "reading the audit log";
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, at, user_name, action, target, detail, address FROM audit \
                 ORDER BY at DESC, id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(self.err(what))?;
            rows.iter()
                .map(|r| {
                    Ok(AuditRow {
                        id: r.int("id")?,
                        entry: AuditEntry {
                            at: r.int("at")?,
                            user_name: r.text("user_name")?,
                            action: r.text("action")?,
                            target: r.opt_text("target")?,
                            detail: r.opt_text("detail")?,
                            address: r.opt_text("address")?,
                        },
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(self.err(what))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn users_sessions_and_lockout() {
        let (_dir, s) = store().await;
        assert!(s.add_user("alice", Role::Physicist, "h1", 1).await.unwrap());
        assert!(!s.add_user("alice", Role::Viewer, "h2", 2).await.unwrap());
        assert_eq!(
            s.get_user("alice").await.unwrap().unwrap().role,
            Role::Physicist
        );
        // four failures count, the fifth locks and restarts the count
        for _ in 0..4 {
            assert_eq!(s.record_login_failure("alice", 5, 900).await.unwrap(), None);
        }
        assert_eq!(s.get_user("alice").await.unwrap().unwrap().failed_logins, 4);
        assert_eq!(
            s.record_login_failure("alice", 5, 900).await.unwrap(),
            Some(900)
        );
        let u = s.get_user("alice").await.unwrap().unwrap();
        assert_eq!((u.failed_logins, u.locked_until), (0, Some(900)));
        assert_eq!(
            s.record_login_failure("nobody", 5, 900).await.unwrap(),
            None
        );
        s.record_login_success("alice").await.unwrap();
        assert_eq!(
            s.get_user("alice").await.unwrap().unwrap().locked_until,
            None
        );

        let new = NewSession {
            token_hash: "t1",
            user_name: "alice",
            csrf_token: "c1",
            created_at: 10,
            expires_at: 100,
            address: Some("127.0.0.1"),
        };
        s.create_session(&new).await.unwrap();
        let live = s.session("t1", 50).await.unwrap().unwrap();
        assert_eq!(
            (live.user_name.as_str(), live.csrf_token.as_str()),
            ("alice", "c1")
        );
        assert_eq!(s.session("t1", 100).await.unwrap(), None, "expired");
        assert_eq!(s.session("t2", 50).await.unwrap(), None);
        assert!(s.remove_user("alice").await.unwrap());
        assert_eq!(
            s.session("t1", 50).await.unwrap(),
            None,
            "removed with its user"
        );
        assert!(!s.remove_user("alice").await.unwrap());
    }

    #[tokio::test]
    async fn audit_is_newest_first() {
        let (_dir, s) = store().await;
        for (at, action) in [(1, "a"), (3, "c"), (2, "b")] {
            s.record_audit(&AuditEntry {
                at,
                user_name: "bob".into(),
                action: action.into(),
                target: None,
                detail: None,
                address: Some("10.0.0.1".into()),
            })
            .await
            .unwrap();
        }
        let log = s.audit_log(2).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(actions, ["c", "b"]);
    }
}
