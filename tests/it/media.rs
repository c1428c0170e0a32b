//! Exercise media: pictures and videos uploaded as `Binary` (raw or as FHIR), checked
//! (type, signature, size), read back as media or as FHIR, linked from a library
//! exercise and shown on the take-home sheet (HTML and PDF).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// A real PNG picture (a gradient), `w` x `h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    // a little noise so that the size grows with the picture
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761) >> 24;
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, n as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

async fn upload(s: &TestServer, content_type: &str, bytes: Vec<u8>) -> reqwest::Response {
    s.client
        .post(s.url("Binary"))
        .header("Content-Type", content_type)
        .header("Accept", FHIR_JSON)
        .body(bytes)
        .send()
        .await
        .expect("POST")
}

async fn get_as(s: &TestServer, path: &str, accept: &str) -> reqwest::Response {
    s.client
        .get(s.url(path))
        .header("Accept", accept)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn pictures_upload_and_read_back_as_media_or_as_fhir() {
    let s = start().await;
    let picture = png(40, 30);
    let res = upload(&s, "image/png", picture.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created = json(res).await;
    assert_eq!(created["resourceType"], "Binary");
    assert_eq!(created["contentType"], "image/png");
    let id = created["id"].as_str().expect("id").to_string();

    // the media itself, for a browser or an app
    let res = get_as(&s, &format!("Binary/{id}"), "image/png").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().contains_key("etag"));
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), picture);
    let res = get_as(&s, &format!("Binary/{id}"), "image/*").await;
    assert_eq!(res.status(), StatusCode::OK);
    outcome(
        get_as(&s, &format!("Binary/{id}"), "video/mp4").await,
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    // as FHIR
    let res = get_as(&s, &format!("Binary/{id}"), FHIR_JSON).await;
    let fhir = json(res).await;
    assert_eq!(fhir["contentType"], "image/png");
    assert!(
        fhir["data"]
            .as_str()
            .is_some_and(|d| d.starts_with("iVBORw0KGgo"))
    );
    let res = get_as(&s, &format!("Binary/{id}/_history/1"), "image/png").await;
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), picture);

    // replaced by a PUT of the media
    let other = png(20, 20);
    let res = s
        .client
        .put(s.url(&format!("Binary/{id}")))
        .header("Content-Type", "image/png")
        .body(other.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), StatusCode::OK);
    let res = get_as(&s, &format!("Binary/{id}"), "image/png").await;
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), other);

    // the FHIR form is accepted too, and checked the same way
    let res = s
        .post_json(
            "Binary",
            &json!({"resourceType": "Binary", "contentType": "image/png", "data": fhir["data"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn media_are_checked_type_signature_and_size() {
    let clock = std::sync::Arc::new(api::clock::SystemClock);
    let s = start_with(|c| c.max_binary_bytes = 4096, clock).await;
    // a PNG labelled as JPEG
    let issue = outcome(
        upload(&s, "image/jpeg", png(8, 8)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Binary.data");
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("image/png"))
    );
    // a page or a script is not exercise media, whatever it is called
    let issue = outcome(
        upload(&s, "text/html", b"<script>alert(1)</script>".to_vec()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Binary.contentType");
    let issue = outcome(
        upload(&s, "image/png", b"<script>alert(1)</script>".to_vec()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["code"], "invalid");
    // larger than the limit: raw (413 before reading) and as FHIR (422)
    let big = png(200, 200);
    assert!(big.len() > 4096);
    outcome(
        upload(&s, "image/png", big.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(&big);
    let res = s
        .post_json(
            "Binary",
            &json!({"resourceType": "Binary", "contentType": "image/png", "data": data}),
        )
        .await;
    let issue = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(issue["code"], "too-long");
    // a Binary without content
    let res = s
        .post_json(
            "Binary",
            &json!({"resourceType": "Binary", "contentType": "image/png"}),
        )
        .await;
    outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    // nothing was stored by any of these
    let found = json(s.get("Binary?_count=0").await).await;
    assert_eq!(found["total"], 0);
}

#[tokio::test]
async fn a_linked_picture_is_on_the_sheet_in_html_and_pdf() {
    let s = start().await;
    let created = json(upload(&s, "image/png", png(120, 90)).await).await;
    let bid = created["id"].as_str().expect("id").to_string();
    // the clinic links the picture from a library exercise
    let mut ad = json(s.get("ActivityDefinition/pelvic-tilt").await).await;
    ad["relatedArtifact"] = json!([{"type": "documentation", "label": "Picture",
        "document": {"contentType": "image/png", "url": format!("Binary/{bid}"), "title": "Pelvic tilt"}}]);
    let res = s.put_json("ActivityDefinition/pelvic-tilt", &ad).await;
    assert_eq!(res.status(), StatusCode::OK);

    let p = s.create(patient("media1")).await;
    let pid = p["id"].as_str().expect("id");
    let plan = json(
        s.get(&format!(
            "PlanDefinition/low-back-pain/$apply?subject=Patient/{pid}"
        ))
        .await,
    )
    .await;
    let id = plan["id"].as_str().expect("id").to_string();

    let html = get_as(&s, &format!("CarePlan/{id}/$handout"), "text/html")
        .await
        .text()
        .await
        .expect("html");
    // the picture travels inside the page
    assert_eq!(
        html.matches("<img src=\"data:image/png;base64,iVBORw0KGgo")
            .count(),
        1
    );

    let res = get_as(&s, &format!("CarePlan/{id}/$handout"), "application/pdf").await;
    assert_eq!(res.status(), StatusCode::OK);
    let pdf = res.bytes().await.expect("pdf");
    if let Ok(path) = std::env::var("HEP_HANDOUT_PICTURE_PDF") {
        std::fs::write(path, &pdf).expect("write the sheet");
    }
    let doc = lopdf::Document::load_mem(&pdf).expect("PDF");
    let images: std::collections::BTreeSet<_> = doc
        .get_pages()
        .values()
        .flat_map(|page| doc.get_page_images(*page).unwrap_or_default())
        .map(|i| i.id)
        .collect();
    assert_eq!(images.len(), 1, "one picture in the PDF sheet");
    let (_, page) = doc.get_pages().into_iter().next().expect("first page");
    let img = &doc.get_page_images(page).expect("images")[0];
    assert_eq!((img.width, img.height), (120, 90));
    let text: Value = json!(doc.extract_text(&[1]).expect("text"));
    assert!(text.as_str().is_some_and(|t| t.contains("1. Pelvic tilt")));
}
