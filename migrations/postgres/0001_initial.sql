-- hu-red schema, PostgreSQL dialect (keep in step with migrations/sqlite/0001_initial.sql).
-- Conventions shared by both dialects:
--   * timestamps are BIGINT unix milliseconds (UTC);
--   * booleans are 0/1 integers (CHECK-constrained);
--   * UIDs are TEXT keys; generated ids are 64-bit integers that are never reused
--     (results are written under data_dir/results/<run id>/).
-- Never edit or delete a migration once released: add a new one.

-- Scanners known from the configuration ([[scanners]]), kept for reports and joins.
CREATE TABLE scanners (
    name          TEXT PRIMARY KEY NOT NULL,
    calling_ae    TEXT,
    station_name  TEXT,
    phantom       TEXT,
    recipients    TEXT NOT NULL DEFAULT '[]',          -- JSON array of addresses
    updated_at    BIGINT NOT NULL
);

-- One row per DICOM series seen by the SCP.
CREATE TABLE series (
    series_instance_uid     TEXT PRIMARY KEY NOT NULL,
    study_instance_uid      TEXT NOT NULL,
    state                   TEXT NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'stable', 'analysing', 'done', 'failed', 'not_analysed')),
    state_changed_at        BIGINT NOT NULL,
    first_received_at       BIGINT NOT NULL,
    last_received_at        BIGINT NOT NULL,
    n_instances             BIGINT NOT NULL DEFAULT 0 CHECK (n_instances >= 0),
    amended                 INTEGER NOT NULL DEFAULT 0 CHECK (amended IN (0, 1)),
    calling_ae              TEXT,
    station_name            TEXT,
    modality                TEXT,
    description             TEXT,
    analysable              INTEGER NOT NULL DEFAULT 0 CHECK (analysable IN (0, 1)),
    last_run_id             BIGINT,
    analysed_instance_count BIGINT,
    analysed_fingerprint    TEXT
);
CREATE INDEX series_state_last_received ON series (state, last_received_at);

-- One row per stored SOP instance (a re-sent SOP Instance UID replaces its row).
CREATE TABLE instances (
    sop_instance_uid    TEXT PRIMARY KEY NOT NULL,
    series_instance_uid TEXT NOT NULL REFERENCES series (series_instance_uid),
    study_instance_uid  TEXT NOT NULL,
    sop_class_uid       TEXT NOT NULL,
    transfer_syntax     TEXT NOT NULL,
    rel_path            TEXT NOT NULL,
    size_bytes          BIGINT NOT NULL,
    calling_ae          TEXT NOT NULL,
    called_ae           TEXT NOT NULL,
    peer                TEXT NOT NULL,
    modality            TEXT,
    station_name        TEXT,
    series_description  TEXT,
    analysable          INTEGER NOT NULL CHECK (analysable IN (0, 1)),
    received_at         BIGINT NOT NULL,
    times_received      BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX instances_series ON instances (series_instance_uid);

-- One row per analysis of a series (a re-opened series gets a new run).
CREATE TABLE runs (
    id                   BIGSERIAL PRIMARY KEY,
    series_instance_uid  TEXT NOT NULL REFERENCES series (series_instance_uid),
    started_at           BIGINT NOT NULL,
    finished_at          BIGINT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('ok', 'error', 'failed')),
    verdict              TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL', 'ERROR', 'NONE')),
    phantom_id           TEXT,
    phantom_name         TEXT,
    detection            TEXT,
    confidence           DOUBLE PRECISION,
    pose_centre_x_mm     DOUBLE PRECISION,
    pose_centre_y_mm     DOUBLE PRECISION,
    pose_rotation_deg    DOUBLE PRECISION,
    slab_centre_index    BIGINT,
    slab_n_slices        BIGINT,
    slab_mm              DOUBLE PRECISION,
    slab_centre_z_mm     DOUBLE PRECISION,
    assignment           TEXT,
    absolute_pass        INTEGER CHECK (absolute_pass IN (0, 1)),
    constancy_pass       INTEGER CHECK (constancy_pass IN (0, 1)),
    pearson_r            DOUBLE PRECISION,
    baseline_source      TEXT,
    warnings             TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    error                TEXT,
    summary_json         TEXT,
    outputs_dir          TEXT,
    amended              INTEGER NOT NULL DEFAULT 0 CHECK (amended IN (0, 1)),
    scanner              TEXT,
    instance_count       BIGINT NOT NULL,
    instance_fingerprint TEXT NOT NULL
);
CREATE INDEX runs_series ON runs (series_instance_uid, id);
ALTER TABLE series ADD CONSTRAINT series_last_run_fk FOREIGN KEY (last_run_id) REFERENCES runs (id);

-- Per-material values of a run (the mean over the material's ROIs) with constancy.
CREATE TABLE material_results (
    run_id             BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    insert_name        TEXT NOT NULL,
    red                DOUBLE PRECISION,
    hu_mean            DOUBLE PRECISION,
    hu_std             DOUBLE PRECISION,
    hu_median          DOUBLE PRECISION,
    n_rois             BIGINT NOT NULL CHECK (n_rois >= 0),
    n_pixels           BIGINT NOT NULL CHECK (n_pixels >= 0),
    hu_expected        DOUBLE PRECISION,
    hu_window_low      DOUBLE PRECISION,
    hu_window_high     DOUBLE PRECISION,
    within_window      INTEGER CHECK (within_window IN (0, 1)),
    baseline_hu        DOUBLE PRECISION,
    delta_hu           DOUBLE PRECISION,
    tolerance_hu       DOUBLE PRECISION,
    within_tolerance   INTEGER CHECK (within_tolerance IN (0, 1)),
    delta_red_percent  DOUBLE PRECISION,
    note               TEXT,
    PRIMARY KEY (run_id, seq)
);

-- Per-ROI measurements of a run.
CREATE TABLE roi_measurements (
    run_id            BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    hole              TEXT NOT NULL,
    ring              TEXT,
    insert_name       TEXT NOT NULL,
    center_x_mm       DOUBLE PRECISION,
    center_y_mm       DOUBLE PRECISION,
    center_col_px     DOUBLE PRECISION,
    center_row_px     DOUBLE PRECISION,
    roi_radius_mm     DOUBLE PRECISION,
    roi_radius_px     DOUBLE PRECISION,
    insert_radius_mm  DOUBLE PRECISION,
    hu_mean           DOUBLE PRECISION,
    hu_std            DOUBLE PRECISION,
    hu_median         DOUBLE PRECISION,
    n_pixels          BIGINT NOT NULL CHECK (n_pixels >= 0),
    n_slices          BIGINT NOT NULL CHECK (n_slices >= 0),
    refine_shift_mm   DOUBLE PRECISION,
    contrast_hu       DOUBLE PRECISION,
    PRIMARY KEY (run_id, seq)
);

-- Baselines (issue 4): a set of reference HU per material for a scanner/phantom.
CREATE TABLE baselines (
    id            BIGSERIAL PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    scanner       TEXT,
    phantom_id    TEXT NOT NULL,
    source        TEXT NOT NULL,                       -- file path or "run <id>"
    run_id        BIGINT REFERENCES runs (id),
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    note          TEXT
);
CREATE INDEX baselines_lookup ON baselines (phantom_id, scanner, active);

CREATE TABLE baseline_entries (
    baseline_id   BIGINT NOT NULL REFERENCES baselines (id) ON DELETE CASCADE,
    insert_name   TEXT NOT NULL,
    hu_mean       DOUBLE PRECISION,
    red           DOUBLE PRECISION,
    PRIMARY KEY (baseline_id, insert_name)
);

-- Notification outbox (issue 4): one message per run to send, with retry bookkeeping.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    run_id           BIGINT NOT NULL REFERENCES runs (id),
    recipients       TEXT NOT NULL CHECK (recipients <> '[]'),  -- JSON array of addresses
    subject          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    message_id       TEXT,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
