DROP INDEX IF EXISTS message_annotations_question_trgm_idx;
DROP EXTENSION IF EXISTS pg_trgm;
DROP TABLE IF EXISTS execution_jobs;
