-- Draft and published: what applications, API keys and end users run is the version a
-- builder published (workflows.published_version_id); builders edit and run the draft
-- (the current version). Every workflow that exists now publishes its current version, so
-- applications keep running what they ran. A workflow never published runs its draft
-- everywhere, as before publishing existed.
ALTER TABLE workflows
    ADD COLUMN published_version_id uuid REFERENCES workflow_versions (id) ON DELETE SET NULL;
CREATE INDEX workflows_published_version_id_idx ON workflows (published_version_id);
UPDATE workflows w
   SET published_version_id = v.id
  FROM workflow_versions v
 WHERE v.workflow_id = w.id AND v.is_current;

-- Node types that call tools, run agents and run code.
ALTER TABLE nodes DROP CONSTRAINT nodes_node_type_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_node_type_check CHECK (node_type IN
    ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END',
     'AGENT', 'TOOL', 'CODE'));
ALTER TABLE node_execution_results DROP CONSTRAINT node_execution_results_node_type_check;
ALTER TABLE node_execution_results ADD CONSTRAINT node_execution_results_node_type_check CHECK (node_type IN
    ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END',
     'AGENT', 'TOOL', 'CODE'));

-- What a CODE node's code wrote to its console (a list of lines).
ALTER TABLE node_execution_results ADD COLUMN console jsonb;
