DROP FUNCTION weft_metadata_matches(jsonb, jsonb);
DROP FUNCTION weft_metadata_time(jsonb);
ALTER TABLE datasets DROP COLUMN rerank_model, DROP COLUMN rerank_provider_id;
ALTER TABLE documents DROP COLUMN doc_metadata;
