DROP TABLE connections;
DROP TABLE nodes;
DROP TABLE workflow_versions;
ALTER TABLE workflow_templates DROP CONSTRAINT workflow_templates_source_workflow_id_fkey;
DROP TABLE workflows;
DROP TABLE workflow_templates;
