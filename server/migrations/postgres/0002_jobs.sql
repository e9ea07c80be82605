-- Background jobs: rollup bookkeeping, per-company request counts, job leases and run history,
-- and time indexes for company-wide day queries (rollups) and retention.

ALTER TABLE company_usage_daily ADD COLUMN rejected_json TEXT NOT NULL DEFAULT '{}';

-- (company, UTC day) pairs whose rollups must be recomputed; marked in the ingest transaction.
-- `version` grows with every mark, so the job clears only the marks it has seen.
CREATE TABLE rollup_dirty (
    company_id   UUID NOT NULL REFERENCES companies (id),
    utc_day      BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    PRIMARY KEY (company_id, utc_day)
);

-- Agent API calls per company and 15-minute bucket, by outcome (`ok` or an error code).
CREATE TABLE agent_request_counts (
    company_id UUID NOT NULL REFERENCES companies (id),
    bucket_ms  BIGINT NOT NULL,
    code       TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (company_id, bucket_ms, code)
);

-- Platform tables (not tenant data): which tick of each job was claimed, and every run.
CREATE TABLE job_leases (
    job           TEXT PRIMARY KEY,
    last_tick     BIGINT NOT NULL,
    holder        TEXT NOT NULL,
    claimed_at_ms BIGINT NOT NULL
);

CREATE TABLE job_runs (
    id             UUID PRIMARY KEY,
    job            TEXT NOT NULL,
    tick           BIGINT NOT NULL,
    holder         TEXT NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT NOT NULL,
    rows_affected  BIGINT NOT NULL,
    error          TEXT
);
CREATE INDEX job_runs_job_tick ON job_runs (job, tick);

CREATE INDEX app_usage_time ON app_usage (company_id, start_ms);
CREATE INDEX website_usage_time ON website_usage (company_id, start_ms);
CREATE INDEX idle_spans_time ON idle_spans (company_id, start_ms);
CREATE INDEX work_sessions_time ON work_sessions (company_id, start_ms);
CREATE INDEX activity_log_time ON activity_log (company_id, minute_ms);
CREATE INDEX screenshots_time ON screenshots (company_id, taken_at_ms);
