ALTER TABLE node_execution_results DROP COLUMN console;
DELETE FROM node_execution_results WHERE node_type IN ('AGENT', 'TOOL', 'CODE');
DELETE FROM nodes WHERE node_type IN ('AGENT', 'TOOL', 'CODE');
ALTER TABLE node_execution_results DROP CONSTRAINT node_execution_results_node_type_check;
ALTER TABLE node_execution_results ADD CONSTRAINT node_execution_results_node_type_check CHECK (node_type IN
    ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END'));
ALTER TABLE nodes DROP CONSTRAINT nodes_node_type_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_node_type_check CHECK (node_type IN
    ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END'));
ALTER TABLE workflows DROP COLUMN published_version_id;
