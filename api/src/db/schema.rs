// @generated automatically by Diesel CLI.

diesel::table! {
    conditional_keys (tenant, res_type, criteria) {
        tenant -> Text,
        res_type -> Text,
        criteria -> Text,
        res_id -> Text,
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

diesel::allow_tables_to_appear_in_same_query!(
    conditional_keys,
    resource_versions,
    resources,
    search_tokens,
);
