-- Annotation management: an annotation may be written from a question and answer alone (no
-- message), and an application's annotations are listed newest first (Application.annotations).
ALTER TABLE message_annotations ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE message_annotations ALTER COLUMN conversation_id DROP NOT NULL;
-- One written without a message answers a question, so it has one.
ALTER TABLE message_annotations ADD CONSTRAINT message_annotations_question_without_message
    CHECK (message_id IS NOT NULL OR (question IS NOT NULL AND conversation_id IS NULL));
DROP INDEX message_annotations_application_id_idx;
CREATE INDEX message_annotations_application_created_idx
    ON message_annotations (application_id, created_at DESC, id DESC);
