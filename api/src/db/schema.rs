// @generated automatically by Diesel CLI.

diesel::table! {
    audit_events (tenant, id) {
        tenant -> Text,
        id -> Text,
        recorded -> BigInt,
        action -> Text,
        subtype -> Text,
        outcome -> Text,
        status -> Integer,
        client -> Text,
        address -> Nullable<Text>,
        res_type -> Nullable<Text>,
        res_id -> Nullable<Text>,
        version -> Nullable<BigInt>,
        patient -> Nullable<Text>,
        query -> Nullable<Text>,
    }
}

diesel::table! {
    audit_patients (tenant, patient, bucket) {
        tenant -> Text,
        patient -> Text,
        bucket -> BigInt,
    }
}

diesel::table! {
    client_assertions (tenant, client_id, jti) {
        tenant -> Text,
        client_id -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    clients (tenant, client_id) {
        tenant -> Text,
        client_id -> Text,
        name -> Text,
        scope -> Text,
        jwks -> Nullable<Text>,
        jwks_url -> Nullable<Text>,
        created_at -> BigInt,
        kind -> Text,
        redirect_uris -> Nullable<Text>,
        secret_hash -> Nullable<Text>,
    }
}

diesel::table! {
    conditional_keys (tenant, res_type, criteria) {
        tenant -> Text,
        res_type -> Text,
        criteria -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    export_jobs (tenant, id) {
        tenant -> Text,
        id -> Text,
        client -> Text,
        status -> Text,
        request -> Text,
        spec -> Text,
        created_at -> BigInt,
        owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        attempts -> Integer,
        progress -> Nullable<Text>,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        finished_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    subscriptions (tenant, id) {
        tenant -> Text,
        id -> Text,
        topic -> Text,
        status -> Text,
        channel -> Text,
        subscriber -> Text,
        filters -> Integer,
        events -> BigInt,
        delivered -> BigInt,
        failures -> Integer,
        last_error -> Nullable<Text>,
        next_attempt -> BigInt,
        last_sent -> Nullable<BigInt>,
        owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    subscription_filters (tenant, topic, param, value, subscription) {
        tenant -> Text,
        topic -> Text,
        param -> Text,
        value -> Text,
        subscription -> Text,
    }
}

diesel::table! {
    subscription_events (tenant, subscription, number) {
        tenant -> Text,
        subscription -> Text,
        number -> BigInt,
        res_type -> Text,
        res_id -> Text,
        version -> BigInt,
        occurred -> BigInt,
    }
}

diesel::table! {
    resource_versions (tenant, seq) {
        seq -> BigInt,
        tenant -> Text,
        res_type -> Text,
        res_id -> Text,
        version -> BigInt,
        last_updated -> BigInt,
        method -> Text,
        body -> Nullable<Text>,
    }
}

diesel::table! {
    resources (tenant, res_type, res_id) {
        tenant -> Text,
        res_type -> Text,
        res_id -> Text,
        version -> BigInt,
        last_updated -> BigInt,
        deleted -> Bool,
        body -> Nullable<Text>,
    }
}

diesel::table! {
    search_tokens (tenant, res_type, res_id, param, system, code) {
        tenant -> Text,
        res_type -> Text,
        res_id -> Text,
        param -> Text,
        system -> Text,
        code -> Text,
    }
}

diesel::table! {
    search_dates (tenant, res_type, res_id, param, lo, hi) {
        tenant -> Text,
        res_type -> Text,
        res_id -> Text,
        param -> Text,
        lo -> BigInt,
        hi -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    conditional_keys,
    resource_versions,
    resources,
    search_dates,
    search_tokens,
);

diesel::table! {
    sessions (tenant, care_plan_id, due_from, task_id) {
        tenant -> Text,
        task_id -> Text,
        care_plan_id -> Text,
        request_id -> Text,
        patient_id -> Text,
        due_from -> BigInt,
        due_until -> BigInt,
        slot -> BigInt,
        status -> Text,
        completed_at -> Nullable<BigInt>,
        done_volume -> Nullable<BigInt>,
        prescribed_volume -> BigInt,
        prescribed_sets -> BigInt,
        prescribed_reps -> BigInt,
        pain -> Nullable<BigInt>,
        difficulty -> Nullable<BigInt>,
    }
}

diesel::table! {
    schedules (tenant, care_plan_id, request_id) {
        tenant -> Text,
        care_plan_id -> Text,
        request_id -> Text,
        scheduled_until -> BigInt,
    }
}

diesel::table! {
    store_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    summary_queue (tenant, task_id) {
        tenant -> Text,
        task_id -> Text,
    }
}

diesel::table! {
    idempotency_keys (tenant, idem_key) {
        tenant -> Text,
        idem_key -> Text,
        fingerprint -> Text,
        status -> Integer,
        res_type -> Nullable<Text>,
        res_id -> Nullable<Text>,
        version -> Nullable<BigInt>,
        last_updated -> Nullable<BigInt>,
        body -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    unique_identifiers (tenant, res_type, system, value) {
        tenant -> Text,
        res_type -> Text,
        system -> Text,
        value -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    users (tenant, user_id) {
        tenant -> Text,
        user_id -> Text,
        username -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        role -> Text,
        fhir_user -> Text,
        setup_hash -> Nullable<Text>,
        setup_expires -> Nullable<BigInt>,
        tokens_after -> BigInt,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    invitations (tenant, code_hash) {
        tenant -> Text,
        code_hash -> Text,
        patient_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    grants (tenant, grant_id) {
        tenant -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        patient -> Nullable<Text>,
        fhir_user -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    auth_codes (tenant, code_hash) {
        tenant -> Text,
        code_hash -> Text,
        grant_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (tenant, token_hash) {
        tenant -> Text,
        token_hash -> Text,
        grant_id -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    launches (tenant, launch_hash) {
        tenant -> Text,
        launch_hash -> Text,
        patient -> Text,
        encounter -> Nullable<Text>,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(grants, users);

diesel::table! {
    measure_assignments (tenant, care_plan_id, questionnaire) {
        tenant -> Text,
        care_plan_id -> Text,
        questionnaire -> Text,
        patient_id -> Text,
        started_at -> BigInt,
        every_micros -> Nullable<BigInt>,
        at_discharge -> Bool,
        next_due -> Nullable<BigInt>,
        active -> Bool,
    }
}

diesel::table! {
    measure_tasks (tenant, task_id) {
        tenant -> Text,
        task_id -> Text,
        care_plan_id -> Text,
        questionnaire -> Text,
        patient_id -> Text,
        occasion -> Text,
        due_from -> BigInt,
        due_until -> BigInt,
        status -> Text,
    }
}

diesel::table! {
    outcome_scores (tenant, response_id) {
        tenant -> Text,
        response_id -> Text,
        observation_id -> Text,
        patient_id -> Text,
        care_plan_id -> Nullable<Text>,
        questionnaire -> Text,
        scored_at -> BigInt,
        score -> Double,
    }
}

diesel::table! {
    rtm_episodes (tenant, care_plan_id) {
        tenant -> Text,
        care_plan_id -> Text,
        patient_id -> Text,
        start_date -> Text,
        end_date -> Nullable<Text>,
    }
}

diesel::table! {
    monitoring_events (tenant, res_type, res_id) {
        tenant -> Text,
        res_type -> Text,
        res_id -> Text,
        patient_id -> Text,
        at -> BigInt,
        kind -> Text,
        minutes -> BigInt,
        who -> Nullable<Text>,
        what -> Nullable<Text>,
    }
}
