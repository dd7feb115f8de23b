-- Run history (Workspace.executions, Workflow.executions): newest first with the id as the
-- tie-break, so each page is one index range scan, with or without a status filter; runs
-- of one application read by the same order.
DROP INDEX execution_records_workspace_created_idx;
DROP INDEX execution_records_workflow_created_idx;
DROP INDEX execution_records_triggered_by_application_id_idx;
CREATE INDEX execution_records_workspace_created_idx
    ON execution_records (workspace_id, created_at DESC, id DESC);
CREATE INDEX execution_records_workspace_status_created_idx
    ON execution_records (workspace_id, status, created_at DESC, id DESC);
CREATE INDEX execution_records_workflow_created_idx
    ON execution_records (workflow_id, created_at DESC, id DESC);
CREATE INDEX execution_records_triggered_by_application_id_idx
    ON execution_records (triggered_by_application_id, created_at DESC, id DESC);
