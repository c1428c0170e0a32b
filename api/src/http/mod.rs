//! The HTTP surface: the routes under `/fhir`, and what the CapabilityStatement says of
//! them. The shared state is in `state`, the rendering of answers in `negotiate`.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod authn;
pub mod bundle;
pub mod deadline;
pub mod everything;
pub mod export;
pub mod health;
pub mod negotiate;
pub mod operations;
pub(crate) mod pages;
pub mod rest;
pub mod signin;
pub mod span;
pub mod state;
pub mod subscription;
pub mod token;
pub mod validate;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Type-level and instance-level interactions, as routed below (listed in the
/// CapabilityStatement; a test performs each one).
pub const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// Operations, as routed below: (resource type, name, OperationDefinition); an empty
/// type is an operation on the base URL.
pub fn operations() -> Vec<(&'static str, &'static str, String)> {
    let own = |id: &str| fhir_mapping::hep::canonical("OperationDefinition", id);
    vec![
        (
            "PlanDefinition",
            "apply",
            "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply".into(),
        ),
        (
            "ActivityDefinition",
            "apply",
            "http://hl7.org/fhir/OperationDefinition/ActivityDefinition-apply".into(),
        ),
        ("CarePlan", "handout", own("CarePlan-handout")),
        ("Patient", "invite", own("Patient-invite")),
        ("Patient", "revoke-access", own("Patient-revoke-access")),
        ("CarePlan", "adherence", own("adherence")),
        ("Patient", "adherence", own("adherence")),
        ("Group", "adherence", own("adherence")),
        ("", "adherence", own("adherence")),
        ("CarePlan", "outcomes", own("outcomes")),
        ("Patient", "outcomes", own("outcomes")),
        ("Patient", "rtm", own("rtm")),
        ("Group", "rtm", own("rtm")),
        ("", "rtm", own("rtm")),
        (
            "",
            "export",
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export".into(),
        ),
        (
            "Patient",
            "export",
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export".into(),
        ),
        (
            "Group",
            "export",
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export".into(),
        ),
        (
            "Subscription",
            "status",
            "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status".into(),
        ),
        (
            "Subscription",
            "events",
            "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events".into(),
        ),
        (
            "Patient",
            "everything",
            "http://hl7.org/fhir/OperationDefinition/Patient-everything".into(),
        ),
        ("*", "validate", validate::DEFINITION.into()),
        (
            "",
            "process-message",
            "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message".into(),
        ),
    ]
}

/// System-level interactions, as routed below.
pub const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system"];

/// The routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(method_not_allowed);
    cfg.service(
        web::resource("/auth/token")
            .route(web::post().to(token::token))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/authorize")
            .route(web::get().to(signin::authorize_get))
            .route(web::post().to(signin::authorize_post))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/login")
            .route(web::post().to(signin::login))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/logout")
            .route(web::get().to(signin::logout))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/redeem")
            .route(web::get().to(signin::redeem_page))
            .route(web::post().to(signin::redeem))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/consent")
            .route(web::get().to(signin::consent_filter))
            .route(web::post().to(signin::consent))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/pages.css")
            .route(web::get().to(signin::stylesheet))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/jwks")
            .route(web::get().to(signin::jwks))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/.well-known/openid-configuration")
            .route(web::get().to(signin::openid_configuration))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/introspect")
            .route(web::post().to(token::introspect))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/revoke")
            .route(web::post().to(token::revoke))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/launch")
            .route(web::post().to(token::launch))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/clients")
            .route(web::post().to(token::register_client))
            .route(web::get().to(token::list_clients))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/clients/{id}")
            .route(web::delete().to(token::remove_client))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/users")
            .route(web::post().to(accounts::add_user))
            .route(web::get().to(accounts::list_users))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/users/{id}")
            .route(web::delete().to(accounts::remove_user))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/auth/clients/{id}/keys")
            .route(web::put().to(token::rotate_client_keys))
            .default_service(not_allowed()),
    );
    cfg.service(
        web::scope("/fhir")
            .wrap(actix_web::middleware::from_fn(
                crate::http::authn::authenticate,
            ))
            .wrap(actix_web::middleware::from_fn(audit::record_requests))
            .service(
                web::resource("/.well-known/smart-configuration")
                    .route(web::get().to(rest::smart_configuration))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource(["", "/"])
                    .route(web::post().to(bundle::transaction))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/$process-message")
                    .route(web::post().to(bundle::process_message))
                    .default_service(not_allowed()),
            )
            // reads and writes of one resource first (the most frequent requests): its
            // segments cannot be any other route's, whose words start with `_` or `$`
            .service(instance(
                "/{type:[A-Z][A-Za-z]{0,63}}/{id:[A-Za-z0-9.-]{1,64}}",
            ))
            .service(
                web::resource("/metadata")
                    .route(web::get().to(rest::metadata))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/$adherence")
                    .route(web::get().to(operations::clinic_adherence))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Group/{id}/$adherence")
                    .route(web::get().to(operations::clinic_adherence))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource(["/$rtm", "/Group/{id}/$rtm"])
                    .route(web::get().to(operations::clinic_rtm))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/_history")
                    .route(web::get().to(rest::history_system))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource(["/$export", "/Patient/$export", "/Group/{id}/$export"])
                    .route(web::get().to(export::kick_off))
                    .route(web::post().to(export::kick_off))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/_export/{job}")
                    .route(web::get().to(export::status))
                    .route(web::delete().to(export::cancel))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/_export/{job}/{file}")
                    .route(web::get().to(export::file))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Subscription/{id}/$status")
                    .route(web::get().to(subscription::status))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Subscription/{id}/$events")
                    .route(web::get().to(subscription::events))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Patient/{id}/$invite")
                    .route(web::post().to(accounts::invite))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Patient/{id}/$revoke-access")
                    .route(web::post().to(accounts::revoke_access))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Patient/{id}/$everything")
                    .route(web::get().to(everything::everything))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/{type}")
                    .route(web::get().to(rest::search))
                    .route(web::post().to(rest::create))
                    .route(web::put().to(rest::conditional_update))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/PlanDefinition/{id}/$apply")
                    .route(web::get().to(operations::apply_template))
                    .route(web::post().to(operations::apply_template))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/CarePlan/{id}/$handout")
                    .route(web::get().to(operations::handout))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/CarePlan/{id}/$adherence")
                    .route(web::get().to(operations::adherence))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Patient/{id}/$adherence")
                    .route(web::get().to(operations::adherence))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource(["/CarePlan/{id}/$outcomes", "/Patient/{id}/$outcomes"])
                    .route(web::get().to(operations::outcomes))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/Patient/{id}/$rtm")
                    .route(web::get().to(operations::patient_rtm))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/ActivityDefinition/{id}/$apply")
                    .route(web::get().to(operations::apply_exercise))
                    .route(web::post().to(operations::apply_exercise))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource(["/{type}/$validate", "/{type}/{id}/$validate"])
                    .route(web::post().to(validate::validate))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/{type}/_search")
                    .route(web::post().to(rest::search_post))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/{type}/_history")
                    .route(web::get().to(rest::history_type))
                    .default_service(not_allowed()),
            )
            // the same, for an id that is not a FHIR id (an answer of its own), after the
            // routes whose second segment is a word of FHIR's (`_search`, `$export`)
            .service(instance("/{type}/{id}"))
            .service(
                web::resource("/{type}/{id}/_history")
                    .route(web::get().to(rest::history_instance))
                    .default_service(not_allowed()),
            )
            .service(
                web::resource("/{type}/{id}/_history/{vid}")
                    .route(web::get().to(rest::vread))
                    .default_service(not_allowed()),
            ),
    );
}

/// The interactions of one resource, at `path`.
fn instance(path: &str) -> actix_web::Resource {
    web::resource(path)
        .route(web::get().to(rest::read))
        .route(web::put().to(rest::update))
        .route(web::patch().to(rest::patch))
        .route(web::delete().to(rest::delete))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let out = negotiate::error_output(&req);
    ApiError::MethodNotAllowed.to_response(out.format, out.pretty)
}

/// Answer for URLs that match no route.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let out = negotiate::error_output(&req);
    ApiError::NotFound("no such endpoint".into()).to_response(out.format, out.pretty)
}
