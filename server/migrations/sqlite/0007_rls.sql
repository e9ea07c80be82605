-- PostgreSQL's 0007 adds row-level security, roles and lookup functions. SQLite has no roles
-- or row-level security: the store's company-scoped queries are its fence. Kept so the two
-- migration folders keep the same file names.
SELECT 1;
