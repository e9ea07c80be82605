-- App spans in a compact layout. They are most of the raw rows, and each one repeated four
-- 16-byte UUIDs (company, record, device, employee) and its app, executable and title as text,
-- then three indexes repeated the keys again (~300 bytes a span). Now:
--   span_devices  one small integer per (company, device, employee);
--   span_apps     one per company's (app, executable) pair;
--   span_titles   one per device's distinct window title (deduplicated by the ingest writer's
--                 memory, not by an index: an index on the text would double its bytes and
--                 make every new title a write at a random place in the file);
--   app_spans     one row per span, keyed (device, start, record id), WITHOUT ROWID, so the
--                 primary key is the table and answers "this device (so this employee) between
--                 these times" without a second index.
-- `app_usage` stays as a view with the old columns, so reads are unchanged; INSTEAD OF triggers
-- keep the store's deletes and time changes working. Only the ingest writer inserts spans.
-- Deduplication: a span sent twice has the same device, start and id, and is ignored.

CREATE TABLE span_devices (
    n           INTEGER PRIMARY KEY,
    company_id  BLOB NOT NULL REFERENCES companies (id),
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    UNIQUE (company_id, device_id, employee_id)
);
CREATE INDEX span_devices_employee ON span_devices (company_id, employee_id);

-- The executable may be NULL; lookups match it with IS, so no UNIQUE constraint (which would
-- let NULLs repeat): the one writer looks up before it inserts.
CREATE TABLE span_apps (
    n          INTEGER PRIMARY KEY,
    company_id BLOB NOT NULL REFERENCES companies (id),
    app        TEXT NOT NULL,
    exe        TEXT
);
CREATE INDEX span_apps_name ON span_apps (company_id, app);

CREATE TABLE span_titles (
    n     INTEGER PRIMARY KEY,
    dev   INTEGER NOT NULL REFERENCES span_devices (n),
    title TEXT NOT NULL
);
CREATE INDEX span_titles_dev ON span_titles (dev);

CREATE TABLE app_spans (
    dev      INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    id       BLOB NOT NULL,
    seq      INTEGER NOT NULL,
    dur_ms   INTEGER NOT NULL,
    app      INTEGER NOT NULL,
    title    INTEGER,
    task_id  BLOB,
    PRIMARY KEY (dev, start_ms, id)
) WITHOUT ROWID;
CREATE INDEX app_spans_task ON app_spans (task_id, start_ms) WHERE task_id IS NOT NULL;

INSERT INTO span_devices (company_id, device_id, employee_id)
    SELECT DISTINCT company_id, device_id, employee_id FROM app_usage;
INSERT INTO span_apps (company_id, app, exe)
    SELECT DISTINCT company_id, app, exe FROM app_usage;
INSERT INTO span_titles (dev, title)
    SELECT DISTINCT d.n, u.title FROM app_usage u
    JOIN span_devices d
      ON d.company_id = u.company_id AND d.device_id = u.device_id
     AND d.employee_id = u.employee_id
    WHERE u.title IS NOT NULL;
CREATE INDEX span_titles_upgrade ON span_titles (dev, title);
INSERT OR IGNORE INTO app_spans (dev, start_ms, id, seq, dur_ms, app, title, task_id)
    SELECT d.n, u.start_ms, u.id, u.seq, u.end_ms - u.start_ms, a.n, t.n, u.task_id
    FROM app_usage u
    JOIN span_devices d
      ON d.company_id = u.company_id AND d.device_id = u.device_id
     AND d.employee_id = u.employee_id
    JOIN span_apps a ON a.company_id = u.company_id AND a.app = u.app AND a.exe IS u.exe
    LEFT JOIN span_titles t ON t.dev = d.n AND t.title = u.title;
DROP INDEX span_titles_upgrade;
DROP TABLE app_usage;

CREATE VIEW app_usage (company_id, id, device_id, employee_id, seq, start_ms, end_ms, app, exe,
                       title, task_id) AS
    SELECT d.company_id, s.id, d.device_id, d.employee_id, s.seq, s.start_ms,
           s.start_ms + s.dur_ms, a.app, a.exe, t.title, s.task_id
    FROM span_devices d
    JOIN app_spans s ON s.dev = d.n
    JOIN span_apps a ON a.n = s.app
    LEFT JOIN span_titles t ON t.n = s.title;

CREATE TRIGGER app_usage_delete INSTEAD OF DELETE ON app_usage
BEGIN
    DELETE FROM app_spans
    WHERE dev = (SELECT n FROM span_devices WHERE company_id = OLD.company_id
                 AND device_id = OLD.device_id AND employee_id = OLD.employee_id)
      AND start_ms = OLD.start_ms AND id = OLD.id;
END;

-- Times are the only columns the store ever changes (cutting spans around a deleted screenshot).
CREATE TRIGGER app_usage_update INSTEAD OF UPDATE OF start_ms, end_ms ON app_usage
BEGIN
    UPDATE app_spans SET start_ms = NEW.start_ms, dur_ms = NEW.end_ms - NEW.start_ms
    WHERE dev = (SELECT n FROM span_devices WHERE company_id = OLD.company_id
                 AND device_id = OLD.device_id AND employee_id = OLD.employee_id)
      AND start_ms = OLD.start_ms AND id = OLD.id;
END;
