ALTER TABLE execution_records DROP COLUMN current_node_key, DROP COLUMN current_node_type;
