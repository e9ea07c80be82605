-- SQLite's 0008 moves app spans into a compact layout (integer keys, interned strings) behind an
-- `app_usage` view. PostgreSQL keeps its `app_usage` table as it is. Kept so the two migration
-- folders keep the same file names.
SELECT 1;
