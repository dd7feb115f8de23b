ALTER TABLE document_segments DROP COLUMN answer, DROP COLUMN parent_segment_id;
DROP TABLE parent_segments;
ALTER TABLE documents DROP COLUMN chunk_mode;
