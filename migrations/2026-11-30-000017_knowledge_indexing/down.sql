DROP TABLE message_retriever_resources;

DELETE FROM execution_jobs WHERE kind = 'INDEX';
DROP INDEX execution_jobs_document_id_idx;
ALTER TABLE execution_jobs
    DROP CONSTRAINT execution_jobs_subject,
    DROP COLUMN document_id,
    DROP COLUMN kind,
    ALTER COLUMN execution_id SET NOT NULL;

DROP INDEX datasets_embedding_provider_id_idx;
ALTER TABLE datasets
    DROP COLUMN embedding_version,
    DROP COLUMN embedding_provider_id;

ALTER TABLE documents
    DROP COLUMN process_rule,
    DROP COLUMN source_text;
