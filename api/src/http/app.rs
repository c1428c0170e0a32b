//! The patient app, served at `/app/` from files embedded in the binary (`api/app/`,
//! by `build.rs`). The app is a SMART app like any other: it signs in through
//! `/auth/authorize` and uses only the public FHIR API; this module only hands out its
//! files, with a Content-Security-Policy that keeps every script, style and request on
//! this origin.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// `(path under /app/, media type, bytes)` of every file of the app.
const FILES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/app_files.rs"));

/// What an app page may load and where it may connect: this origin only. Pictures and
/// the take-home sheet are fetched with the patient's token and shown from `blob:`
/// URLs; the sheet's own inline style is allowed by its SHA-256 (a `blob:` document
/// keeps the policy of the page that made it).
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    let sheet = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        fhir_mapping::hep::handout::SHEET_CSS.as_bytes(),
    );
    let sheet = base64::engine::general_purpose::STANDARD.encode(sheet.as_ref());
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'sha256-{sheet}'; \
img-src 'self' blob: data:; connect-src 'self'; frame-src 'self' blob:; worker-src 'self'; \
manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'"
    )
});

/// The entity tag of each file: a digest of its bytes, so that a new release's files
/// are fetched again and an unchanged file answers 304.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, _, bytes)| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
            let hex: String = digest.as_ref()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("\"{hex}\"")
        })
        .collect()
});

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/app").route(web::get().to(to_app)))
        .service(
            web::resource("/app/{path:.*}")
                .route(web::get().to(file))
                .route(web::head().to(file))
                .default_service(web::to(super::method_not_allowed)),
        );
}

/// `GET /app`: the app lives at `/app/` (its relative links and its service worker's
/// scope need the slash).
async fn to_app(req: HttpRequest) -> HttpResponse {
    let query = req.query_string();
    let location = if query.is_empty() {
        "/app/".to_string()
    } else {
        format!("/app/?{query}")
    };
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// `GET /app/[path]`: one of the app's files (`/app/` is `index.html`); 304 when the
/// browser has it already.
async fn file(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let name = match path.as_str() {
        "" => "index.html",
        other => other,
    };
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body("The app has no such file.");
    };
    let (_, media_type, bytes) = FILES[i];
    let etag = &ETAGS[i];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        // revalidated on every load: a new release reaches the patient at once, and
        // the service worker keeps the copy that works offline
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Content-Security-Policy", CSP.as_str()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"));
    if fresh {
        return response.finish();
    }
    response.content_type(media_type).body(bytes)
}
