// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        application_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 16]
        prefix -> Varchar,
        #[max_length = 128]
        key_hash -> Varchar,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    applications (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 255]
        icon -> Nullable<Varchar>,
        #[max_length = 20]
        mode -> Varchar,
        workflow_id -> Nullable<Uuid>,
        #[max_length = 20]
        status -> Varchar,
        published_at -> Nullable<Timestamptz>,
        opening_statement -> Nullable<Text>,
        suggested_questions -> Jsonb,
        annotation_reply_enabled -> Bool,
        annotation_reply_threshold -> Float4,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_logs (id) {
        id -> Uuid,
        workspace_id -> Nullable<Uuid>,
        #[max_length = 20]
        actor_type -> Varchar,
        actor_user_id -> Nullable<Uuid>,
        actor_api_key_id -> Nullable<Uuid>,
        actor_end_user_id -> Nullable<Uuid>,
        #[max_length = 100]
        action -> Varchar,
        #[max_length = 50]
        resource_type -> Varchar,
        resource_id -> Nullable<Uuid>,
        metadata -> Jsonb,
        #[max_length = 64]
        ip -> Nullable<Varchar>,
        #[max_length = 500]
        user_agent -> Nullable<Varchar>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    connections (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        version_id -> Uuid,
        #[max_length = 100]
        source_node_key -> Varchar,
        #[max_length = 100]
        target_node_key -> Varchar,
        #[max_length = 50]
        source_handle -> Nullable<Varchar>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    conversations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        application_id -> Uuid,
        end_user_id -> Nullable<Uuid>,
        #[max_length = 500]
        title -> Varchar,
        #[max_length = 20]
        status -> Varchar,
        summary -> Nullable<Text>,
        message_count -> Int4,
        metadata -> Jsonb,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    dataset_application_joins (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        dataset_id -> Uuid,
        application_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    datasets (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 255]
        icon -> Nullable<Varchar>,
        #[max_length = 100]
        embedding_model -> Nullable<Varchar>,
        #[max_length = 100]
        embedding_model_provider -> Nullable<Varchar>,
        retrieval_model_config -> Jsonb,
        #[max_length = 50]
        indexing_technique -> Varchar,
        document_count -> Int4,
        word_count -> Int4,
        tokens -> Int4,
        similarity_threshold -> Float4,
        vector_similarity_weight -> Float4,
        top_k -> Int4,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        embedding_provider_id -> Nullable<Uuid>,
        embedding_version -> Int8,
        rerank_provider_id -> Nullable<Uuid>,
        #[max_length = 100]
        rerank_model -> Nullable<Varchar>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    document_segments (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        document_id -> Uuid,
        dataset_id -> Uuid,
        position -> Int4,
        content -> Text,
        word_count -> Int4,
        tokens -> Int4,
        keywords -> Jsonb,
        #[max_length = 255]
        index_node_id -> Nullable<Varchar>,
        #[max_length = 255]
        index_node_hash -> Nullable<Varchar>,
        hit_count -> Int4,
        enabled -> Bool,
        disabled_at -> Nullable<Timestamptz>,
        disabled_by -> Nullable<Uuid>,
        archived -> Bool,
        #[max_length = 50]
        status -> Varchar,
        error -> Nullable<Text>,
        content_tsv -> Nullable<Tsvector>,
        embedding -> Nullable<Array<Nullable<Float4>>>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        parent_segment_id -> Nullable<Uuid>,
        answer -> Nullable<Text>,
    }
}

diesel::table! {
    documents (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        dataset_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 50]
        data_source_type -> Varchar,
        data_source_info -> Jsonb,
        file_id -> Nullable<Uuid>,
        position -> Int4,
        word_count -> Int4,
        tokens -> Int4,
        #[max_length = 50]
        indexing_status -> Varchar,
        error -> Nullable<Text>,
        progress -> Float4,
        progress_msg -> Nullable<Text>,
        process_begin_at -> Nullable<Timestamptz>,
        process_duration -> Nullable<Float8>,
        enabled -> Bool,
        disabled_at -> Nullable<Timestamptz>,
        disabled_by -> Nullable<Uuid>,
        archived -> Bool,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        source_text -> Nullable<Text>,
        process_rule -> Jsonb,
        doc_metadata -> Jsonb,
        #[max_length = 20]
        chunk_mode -> Varchar,
    }
}

diesel::table! {
    end_users (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        session_id -> Nullable<Varchar>,
        #[max_length = 255]
        external_user_id -> Nullable<Varchar>,
        #[max_length = 255]
        name -> Nullable<Varchar>,
        #[max_length = 255]
        email -> Nullable<Varchar>,
        #[max_length = 50]
        phone -> Nullable<Varchar>,
        #[max_length = 500]
        avatar_url -> Nullable<Varchar>,
        metadata -> Jsonb,
        is_anonymous -> Bool,
        last_active_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    execution_jobs (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        execution_id -> Nullable<Uuid>,
        message_id -> Nullable<Uuid>,
        context -> Jsonb,
        #[max_length = 100]
        leased_by -> Nullable<Varchar>,
        lease_expires_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        stop_requested -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        #[max_length = 20]
        kind -> Varchar,
        document_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    execution_records (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        workflow_id -> Uuid,
        version_id -> Uuid,
        #[max_length = 20]
        status -> Varchar,
        inputs -> Jsonb,
        outputs -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        elapsed_ms -> Nullable<Int8>,
        total_tokens -> Int4,
        total_steps -> Int4,
        triggered_by_user_id -> Nullable<Uuid>,
        triggered_by_application_id -> Nullable<Uuid>,
        triggered_by_end_user_id -> Nullable<Uuid>,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        stream_seq -> Nullable<Int8>,
        #[max_length = 100]
        current_node_key -> Nullable<Varchar>,
        #[max_length = 30]
        current_node_type -> Nullable<Varchar>,
    }
}

diesel::table! {
    file_references (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 500]
        storage_key -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 255]
        mime_type -> Varchar,
        size -> Int8,
        #[max_length = 64]
        sha256 -> Varchar,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    installed_plugins (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        plugin_id -> Uuid,
        config -> Jsonb,
        is_enabled -> Bool,
        installed_by -> Nullable<Uuid>,
        installed_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    llm_providers (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 50]
        provider_type -> Varchar,
        #[max_length = 500]
        base_url -> Nullable<Varchar>,
        api_key_encrypted -> Nullable<Bytea>,
        models -> Jsonb,
        #[max_length = 100]
        default_model -> Nullable<Varchar>,
        #[max_length = 100]
        embedding_model -> Nullable<Varchar>,
        max_tokens -> Nullable<Int8>,
        used_tokens -> Int8,
        is_enabled -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    message_annotations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        message_id -> Nullable<Uuid>,
        conversation_id -> Nullable<Uuid>,
        application_id -> Uuid,
        question -> Nullable<Text>,
        content -> Text,
        #[max_length = 50]
        annotation_type -> Varchar,
        hit_count -> Int4,
        annotated_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    message_feedbacks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        message_id -> Uuid,
        conversation_id -> Uuid,
        application_id -> Uuid,
        end_user_id -> Uuid,
        #[max_length = 20]
        rating -> Varchar,
        content -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_servers (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 2000]
        url -> Varchar,
        headers_encrypted -> Nullable<Bytea>,
        header_names -> Jsonb,
        enabled -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    message_retriever_resources (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        message_id -> Uuid,
        position -> Int4,
        dataset_id -> Uuid,
        document_id -> Uuid,
        segment_id -> Nullable<Uuid>,
        #[max_length = 100]
        node_key -> Varchar,
        score -> Float8,
        content -> Text,
        #[max_length = 255]
        document_name -> Varchar,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        conversation_id -> Uuid,
        application_id -> Uuid,
        execution_id -> Nullable<Uuid>,
        sequence_number -> Int4,
        #[max_length = 20]
        role -> Varchar,
        content -> Text,
        query -> Nullable<Text>,
        answer -> Nullable<Text>,
        inputs -> Jsonb,
        outputs -> Nullable<Jsonb>,
        #[max_length = 100]
        model_provider -> Nullable<Varchar>,
        #[max_length = 100]
        model_name -> Nullable<Varchar>,
        prompt_tokens -> Int4,
        completion_tokens -> Int4,
        total_tokens -> Int4,
        latency -> Nullable<Float8>,
        #[max_length = 20]
        status -> Varchar,
        error -> Nullable<Text>,
        metadata -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        stream_seq -> Nullable<Int8>,
        tool_calls -> Jsonb,
        feedback_count -> Int4,
    }
}

diesel::table! {
    node_execution_results (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        execution_id -> Uuid,
        #[max_length = 100]
        node_key -> Varchar,
        #[max_length = 30]
        node_type -> Varchar,
        #[max_length = 255]
        title -> Nullable<Varchar>,
        #[max_length = 20]
        status -> Varchar,
        inputs -> Nullable<Jsonb>,
        outputs -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        elapsed_ms -> Nullable<Int8>,
        total_tokens -> Int4,
        sequence_index -> Int4,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        console -> Nullable<Jsonb>,
    }
}

diesel::table! {
    nodes (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        version_id -> Uuid,
        #[max_length = 100]
        node_key -> Varchar,
        #[max_length = 30]
        node_type -> Varchar,
        #[max_length = 255]
        title -> Nullable<Varchar>,
        config -> Jsonb,
        position_x -> Nullable<Float8>,
        position_y -> Nullable<Float8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    parent_segments (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        dataset_id -> Uuid,
        document_id -> Uuid,
        position -> Int4,
        content -> Text,
        tokens -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    password_resets (id) {
        id -> Uuid,
        user_id -> Uuid,
        #[max_length = 128]
        token_hash -> Varchar,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    plugins (id) {
        id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 255]
        display_name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 50]
        version -> Varchar,
        #[max_length = 255]
        author -> Nullable<Varchar>,
        #[max_length = 500]
        icon -> Nullable<Varchar>,
        #[max_length = 50]
        category -> Nullable<Varchar>,
        #[max_length = 50]
        plugin_type -> Varchar,
        manifest -> Jsonb,
        #[max_length = 500]
        source_url -> Nullable<Varchar>,
        #[max_length = 500]
        documentation_url -> Nullable<Varchar>,
        install_count -> Int4,
        rating -> Nullable<Float8>,
        is_active -> Bool,
        is_verified -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    prompt_template_versions (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        prompt_template_id -> Uuid,
        version_number -> Int4,
        content -> Text,
        variables -> Jsonb,
        is_current -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    prompt_templates (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        #[max_length = 128]
        token_hash -> Varchar,
        family_id -> Uuid,
        replaced_by -> Nullable<Uuid>,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        #[max_length = 500]
        user_agent -> Nullable<Varchar>,
        #[max_length = 64]
        ip -> Nullable<Varchar>,
        created_at -> Timestamptz,
        successor_sealed -> Nullable<Bytea>,
    }
}

diesel::table! {
    team_invitations (id) {
        id -> Uuid,
        team_id -> Uuid,
        #[max_length = 255]
        email -> Varchar,
        #[max_length = 20]
        role -> Varchar,
        #[max_length = 128]
        token_hash -> Varchar,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        accepted_by -> Nullable<Uuid>,
        invited_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    team_members (id) {
        id -> Uuid,
        team_id -> Uuid,
        user_id -> Uuid,
        #[max_length = 20]
        role -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    teams (id) {
        id -> Uuid,
        organization_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        #[max_length = 255]
        email -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 255]
        password_hash -> Varchar,
        #[max_length = 500]
        avatar_url -> Nullable<Varchar>,
        #[max_length = 20]
        language -> Varchar,
        #[max_length = 50]
        timezone -> Varchar,
        is_active -> Bool,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_templates (id) {
        id -> Uuid,
        #[max_length = 100]
        official_key -> Nullable<Varchar>,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 50]
        category -> Nullable<Varchar>,
        graph -> Jsonb,
        is_official -> Bool,
        is_public -> Bool,
        created_by -> Nullable<Uuid>,
        source_workflow_id -> Nullable<Uuid>,
        usage_count -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_versions (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        workflow_id -> Uuid,
        sequence_number -> Int4,
        parent_version_id -> Nullable<Uuid>,
        is_current -> Bool,
        graph -> Jsonb,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflows (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 255]
        icon -> Nullable<Varchar>,
        #[max_length = 20]
        source_type -> Varchar,
        source_template_id -> Nullable<Uuid>,
        source_workflow_id -> Nullable<Uuid>,
        created_by -> Nullable<Uuid>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        published_version_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        team_id -> Uuid,
        #[max_length = 255]
        name -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 255]
        icon -> Nullable<Varchar>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> applications (application_id));
diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(api_keys -> workspaces (workspace_id));
diesel::joinable!(applications -> users (created_by));
diesel::joinable!(applications -> workflows (workflow_id));
diesel::joinable!(applications -> workspaces (workspace_id));
diesel::joinable!(audit_logs -> api_keys (actor_api_key_id));
diesel::joinable!(audit_logs -> end_users (actor_end_user_id));
diesel::joinable!(audit_logs -> users (actor_user_id));
diesel::joinable!(audit_logs -> workspaces (workspace_id));
diesel::joinable!(connections -> workflow_versions (version_id));
diesel::joinable!(connections -> workspaces (workspace_id));
diesel::joinable!(conversations -> applications (application_id));
diesel::joinable!(conversations -> end_users (end_user_id));
diesel::joinable!(conversations -> workspaces (workspace_id));
diesel::joinable!(dataset_application_joins -> applications (application_id));
diesel::joinable!(dataset_application_joins -> datasets (dataset_id));
diesel::joinable!(dataset_application_joins -> workspaces (workspace_id));
diesel::joinable!(datasets -> llm_providers (embedding_provider_id));
diesel::joinable!(datasets -> users (created_by));
diesel::joinable!(datasets -> workspaces (workspace_id));
diesel::joinable!(document_segments -> datasets (dataset_id));
diesel::joinable!(document_segments -> documents (document_id));
diesel::joinable!(document_segments -> parent_segments (parent_segment_id));
diesel::joinable!(document_segments -> workspaces (workspace_id));
diesel::joinable!(documents -> datasets (dataset_id));
diesel::joinable!(documents -> file_references (file_id));
diesel::joinable!(documents -> workspaces (workspace_id));
diesel::joinable!(end_users -> workspaces (workspace_id));
diesel::joinable!(execution_jobs -> execution_records (execution_id));
diesel::joinable!(execution_jobs -> documents (document_id));
diesel::joinable!(execution_jobs -> messages (message_id));
diesel::joinable!(execution_jobs -> workspaces (workspace_id));
diesel::joinable!(execution_records -> applications (triggered_by_application_id));
diesel::joinable!(execution_records -> end_users (triggered_by_end_user_id));
diesel::joinable!(execution_records -> users (triggered_by_user_id));
diesel::joinable!(execution_records -> workflow_versions (version_id));
diesel::joinable!(execution_records -> workflows (workflow_id));
diesel::joinable!(execution_records -> workspaces (workspace_id));
diesel::joinable!(file_references -> users (created_by));
diesel::joinable!(file_references -> workspaces (workspace_id));
diesel::joinable!(installed_plugins -> plugins (plugin_id));
diesel::joinable!(installed_plugins -> users (installed_by));
diesel::joinable!(installed_plugins -> workspaces (workspace_id));
diesel::joinable!(llm_providers -> users (created_by));
diesel::joinable!(llm_providers -> workspaces (workspace_id));
diesel::joinable!(mcp_servers -> users (created_by));
diesel::joinable!(mcp_servers -> workspaces (workspace_id));
diesel::joinable!(message_annotations -> applications (application_id));
diesel::joinable!(message_annotations -> conversations (conversation_id));
diesel::joinable!(message_annotations -> messages (message_id));
diesel::joinable!(message_annotations -> users (annotated_by));
diesel::joinable!(message_annotations -> workspaces (workspace_id));
diesel::joinable!(message_feedbacks -> applications (application_id));
diesel::joinable!(message_feedbacks -> conversations (conversation_id));
diesel::joinable!(message_feedbacks -> end_users (end_user_id));
diesel::joinable!(message_feedbacks -> messages (message_id));
diesel::joinable!(message_feedbacks -> workspaces (workspace_id));
diesel::joinable!(message_retriever_resources -> datasets (dataset_id));
diesel::joinable!(message_retriever_resources -> document_segments (segment_id));
diesel::joinable!(message_retriever_resources -> documents (document_id));
diesel::joinable!(message_retriever_resources -> messages (message_id));
diesel::joinable!(message_retriever_resources -> workspaces (workspace_id));
diesel::joinable!(messages -> applications (application_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(messages -> execution_records (execution_id));
diesel::joinable!(messages -> workspaces (workspace_id));
diesel::joinable!(node_execution_results -> execution_records (execution_id));
diesel::joinable!(node_execution_results -> workspaces (workspace_id));
diesel::joinable!(nodes -> workflow_versions (version_id));
diesel::joinable!(nodes -> workspaces (workspace_id));
diesel::joinable!(organizations -> users (created_by));
diesel::joinable!(parent_segments -> datasets (dataset_id));
diesel::joinable!(parent_segments -> documents (document_id));
diesel::joinable!(parent_segments -> workspaces (workspace_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(prompt_template_versions -> prompt_templates (prompt_template_id));
diesel::joinable!(prompt_template_versions -> users (created_by));
diesel::joinable!(prompt_template_versions -> workspaces (workspace_id));
diesel::joinable!(prompt_templates -> users (created_by));
diesel::joinable!(prompt_templates -> workspaces (workspace_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(team_invitations -> teams (team_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(teams -> organizations (organization_id));
diesel::joinable!(workflow_templates -> users (created_by));
diesel::joinable!(workflow_versions -> users (created_by));
diesel::joinable!(workflow_versions -> workflows (workflow_id));
diesel::joinable!(workflow_versions -> workspaces (workspace_id));
diesel::joinable!(workflows -> users (created_by));
diesel::joinable!(workflows -> workspaces (workspace_id));
diesel::joinable!(workspaces -> teams (team_id));
diesel::joinable!(workspaces -> users (created_by));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    applications,
    audit_logs,
    connections,
    conversations,
    dataset_application_joins,
    datasets,
    document_segments,
    documents,
    end_users,
    execution_jobs,
    execution_records,
    file_references,
    installed_plugins,
    llm_providers,
    mcp_servers,
    message_annotations,
    message_feedbacks,
    message_retriever_resources,
    messages,
    node_execution_results,
    nodes,
    organizations,
    parent_segments,
    password_resets,
    plugins,
    prompt_template_versions,
    prompt_templates,
    refresh_tokens,
    team_invitations,
    team_members,
    teams,
    users,
    workflow_templates,
    workflow_versions,
    workflows,
    workspaces,
);
