-- The node a run is at (the last one started that is still running), kept with total_steps
-- as the run advances, so a workspace's feed and a dashboard opened mid-run both show how
-- far each running execution has come. Cleared when the run ends.
ALTER TABLE execution_records
    ADD COLUMN current_node_key  varchar(100),
    ADD COLUMN current_node_type varchar(30);
