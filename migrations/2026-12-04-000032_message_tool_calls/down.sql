ALTER TABLE messages DROP COLUMN tool_calls;
