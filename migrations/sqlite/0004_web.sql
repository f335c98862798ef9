-- The web dashboard (issue 12), SQLite dialect (keep in step with migrations/postgres/0004_web.sql).

-- When the series was acquired: AcquisitionDate/Time, else SeriesDate/Time, else StudyDate/Time
-- of its headers, as unix ms of that wall-clock time read as UTC (DICOM times carry no zone; the
-- pages show it as written). Trends are ordered by it, not by arrival; NULL = the headers have
-- no date (ordered by finished_at then). Runs stored before this migration: their study_date.
ALTER TABLE runs ADD COLUMN acquired_at BIGINT;
UPDATE runs SET acquired_at = CAST(strftime('%s', study_date) AS INTEGER) * 1000
    WHERE study_date IS NOT NULL AND strftime('%s', study_date) IS NOT NULL;
CREATE INDEX runs_acquired ON runs (scanner_id, phantom_id, acquired_at);
CREATE INDEX runs_finished ON runs (finished_at);

-- Who set a baseline: a dashboard user's name, "auto" for a provisional baseline made by the
-- QA worker (qa.auto_baseline), "NAME (command line)" for `hu-red baseline set/import`. NULL:
-- set before this migration.
ALTER TABLE baselines ADD COLUMN set_by TEXT;

-- Dashboard users: argon2id PHC strings, never the password. `failed_logins` counts the failed
-- logins since the last success; the 5th locks the user until `locked_until` (unix ms).
CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('physicist', 'viewer')),
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    failed_logins  BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT
);

-- Sessions: the cookie holds a random token; only its SHA-256 is stored here. Every form of the
-- session carries its CSRF token.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    address      TEXT
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Every action a person took (dashboard or command line): who, when, what, from which address.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    user_name  TEXT NOT NULL,
    action     TEXT NOT NULL,      -- baseline.set, baseline.confirm, report.resend, user.add, ...
    target     TEXT,               -- "run 12", "baseline 4", "user alice"
    detail     TEXT,
    address    TEXT                -- the client's address; "command line" for the CLI
);
CREATE INDEX audit_at ON audit (at);
