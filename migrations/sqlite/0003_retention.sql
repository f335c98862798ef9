-- Retention (issue 11), SQLite dialect (keep in step with migrations/postgres/0003_retention.sql).

-- When the instance files of a series were purged (unix ms; NULL = its instances are kept). The
-- series row and its runs stay; its instance rows are deleted in the same transaction that sets
-- this, and a new instance of the series clears it again.
ALTER TABLE series ADD COLUMN instances_purged_at BIGINT;
CREATE INDEX series_purged ON series (instances_purged_at);

-- Whether the run's analysis recognised a phantom: 1 (analysed, or stopped after the phantom was
-- found), 0 (no CT image, no phantom recognised, unreadable images: possibly a patient's series),
-- NULL (unknown: hu-red's own failure). Retention treats 0 as "unrecognised".
ALTER TABLE runs ADD COLUMN phantom_recognised INTEGER CHECK (phantom_recognised IN (0, 1));

-- Runs stored before this migration: an analysed run recognised its phantom; a failed run did
-- when its summary has a pose (the planner placed the phantom). The summary JSON is written
-- pretty-printed by hu-red, so the top-level key reads exactly `"pose": null` when it did not.
UPDATE runs SET phantom_recognised = 1 WHERE status = 'ok';
UPDATE runs SET phantom_recognised = CASE
        WHEN summary_json LIKE '%"pose": null%' THEN 0
        ELSE 1
    END
    WHERE status = 'failed' AND summary_json IS NOT NULL;
