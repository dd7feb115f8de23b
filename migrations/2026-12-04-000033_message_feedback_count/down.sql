DROP TRIGGER set_updated_at ON messages;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON messages FOR EACH ROW
    EXECUTE FUNCTION weft_set_updated_at();
DROP TRIGGER count_message_feedback ON message_feedbacks;
DROP FUNCTION weft_count_message_feedback();
ALTER TABLE messages DROP COLUMN feedback_count;
