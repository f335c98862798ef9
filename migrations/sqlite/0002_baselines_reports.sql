-- Baselines per (scanner, phantom, protocol), run identity columns, the report outbox (issue 4).
-- SQLite dialect (keep in step with migrations/postgres/0002_baselines_reports.sql).
-- The baselines, baseline_entries and outbox tables of 0001 were never written to: they are
-- replaced by the versions below.

DROP TABLE outbox;
DROP TABLE baseline_entries;
DROP TABLE baselines;

-- Settings of this database (e.g. installation_id, part of every report's Message-ID so that two
-- databases never send different reports under the same id).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);

-- Who scanned and how, for every run (filled by the worker from the series' headers).
ALTER TABLE runs ADD COLUMN scanner_id TEXT;            -- DeviceSerialNumber, else StationName
ALTER TABLE runs ADD COLUMN manufacturer TEXT;
ALTER TABLE runs ADD COLUMN model TEXT;
ALTER TABLE runs ADD COLUMN station_name TEXT;
ALTER TABLE runs ADD COLUMN device_serial TEXT;
ALTER TABLE runs ADD COLUMN calling_ae TEXT;
ALTER TABLE runs ADD COLUMN protocol_key TEXT;          -- e.g. "kvp=120|kernel=B30f|slice=2"
ALTER TABLE runs ADD COLUMN kvp DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN kernel TEXT;
ALTER TABLE runs ADD COLUMN slice_thickness_mm DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN study_date TEXT;            -- YYYY-MM-DD
ALTER TABLE runs ADD COLUMN baseline_id BIGINT;         -- the baseline it was evaluated against
ALTER TABLE runs ADD COLUMN baseline_provisional INTEGER CHECK (baseline_provisional IN (0, 1));
ALTER TABLE runs ADD COLUMN baseline_note TEXT;         -- e.g. the protocol differs from the baseline's
CREATE INDEX runs_trend ON runs (scanner_id, phantom_id, id);

-- A baseline: reference HU per material for one scanner, phantom and protocol. The active one of
-- a (scanner_id, phantom_id, protocol_key) has superseded_at NULL; setting a new one supersedes it
-- (history keeps every baseline).
CREATE TABLE baselines (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at          BIGINT NOT NULL,
    scanner_id          TEXT NOT NULL,
    scanner_label       TEXT,
    manufacturer        TEXT,
    model               TEXT,
    phantom_id          TEXT NOT NULL,
    protocol_key        TEXT NOT NULL,
    kvp                 DOUBLE PRECISION,
    kernel              TEXT,
    slice_thickness_mm  DOUBLE PRECISION,
    source              TEXT NOT NULL,                  -- "run 12", "import FILE"
    run_id              BIGINT REFERENCES runs (id),
    provisional         INTEGER NOT NULL DEFAULT 0 CHECK (provisional IN (0, 1)),
    confirmed_at        BIGINT,
    superseded_at       BIGINT,
    superseded_by       BIGINT,
    note                TEXT
);
CREATE INDEX baselines_lookup ON baselines (scanner_id, phantom_id, superseded_at);
CREATE UNIQUE INDEX baselines_one_active ON baselines (scanner_id, phantom_id, protocol_key)
    WHERE superseded_at IS NULL;

CREATE TABLE baseline_entries (
    baseline_id   BIGINT NOT NULL REFERENCES baselines (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    insert_name   TEXT NOT NULL,
    hu_mean       DOUBLE PRECISION,                     -- NULL: listed without a value (fails)
    red           DOUBLE PRECISION,
    PRIMARY KEY (baseline_id, insert_name)
);

-- Report emails to deliver: one row per run (kind 'report') plus explicit re-sends ('resend').
-- The row is written in the run's transaction; the sender marks it sent only after the server
-- accepted the message; after mail.max_attempts failures it is 'dead' (dead-lettered).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           BIGINT NOT NULL REFERENCES runs (id),
    kind             TEXT NOT NULL DEFAULT 'report' CHECK (kind IN ('report', 'resend')),
    recipients       TEXT NOT NULL,                     -- JSON array of addresses
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    message_id       TEXT NOT NULL UNIQUE,              -- without the angle brackets
    state            TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_run ON outbox (run_id);
