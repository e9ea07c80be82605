-- The owner's views sum rollups across companies for a range of days. This covering index serves
-- those sums without touching the table. It leads with the day, not the company: the owner's
-- reads are the one cross-company read path, and they see only these aggregate rows.
CREATE INDEX company_usage_daily_day ON company_usage_daily (
    day, company_id, active_employees, tracked_secs, idle_secs, work_sessions, screenshots,
    sync_requests, rejected_requests, records, bytes_ingested
);
