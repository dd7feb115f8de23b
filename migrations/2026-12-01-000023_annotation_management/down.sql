DROP INDEX message_annotations_application_created_idx;
CREATE INDEX message_annotations_application_id_idx ON message_annotations (application_id);
ALTER TABLE message_annotations DROP CONSTRAINT message_annotations_question_without_message;
DELETE FROM message_annotations WHERE message_id IS NULL;
ALTER TABLE message_annotations ALTER COLUMN conversation_id SET NOT NULL;
ALTER TABLE message_annotations ALTER COLUMN message_id SET NOT NULL;
