-- Replies and runs that ended while Redis did not answer have no stream_seq yet: any
-- instance ends their streams once Redis is back. These indexes find them without reading
-- every finished message or run.
CREATE INDEX messages_stream_end_pending ON messages (updated_at)
    WHERE stream_seq IS NULL AND role = 'ASSISTANT' AND status IN ('COMPLETED', 'STOPPED', 'FAILED');
CREATE INDEX execution_records_stream_end_pending ON execution_records (finished_at)
    WHERE stream_seq IS NULL AND finished_at IS NOT NULL;
