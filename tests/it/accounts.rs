//! Patients' invitations and staff accounts: `$invite`, `$revoke-access`,
//! `/auth/users`, `hep-server user add`, and the redeeming of codes and sign-in
//! (called directly: the pages that call them have their own tests).

use api::auth::accounts::{self, RedeemError, Role, SignInError, Throttle};
use api::db::Db;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const PASSWORD: &str = "violet kettle harbour tram";

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn param<'a>(parameters: &'a Value, name: &str) -> &'a Value {
    parameters["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn invite(s: &TestServer, patient: &str) -> String {
    let res = s
        .post_raw(&format!("Patient/{patient}/$invite"), FHIR_JSON, "")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let p = json(res).await;
    assert_eq!(p["resourceType"], "Parameters");
    assert!(
        param(&p, "url")["valueUri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/auth/redeem"))
    );
    assert!(param(&p, "expires")["valueInstant"].is_string());
    let code = param(&p, "code")["valueString"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(code.len(), 8, "{p}");
    code
}

fn redeem(
    db: &Db,
    throttle: &std::sync::Arc<Throttle>,
    code: &str,
    birth_date: Option<&str>,
    username: &str,
    password: &str,
) -> Result<accounts::User, RedeemError> {
    let (t, code, birth, user, pw) = (
        throttle.clone(),
        code.to_string(),
        birth_date.map(str::to_string),
        username.to_string(),
        password.to_string(),
    );
    db.write(move |conn| {
        accounts::redeem(
            conn,
            &t,
            "default",
            &code,
            birth.as_deref(),
            &user,
            &pw,
            "",
            now(),
        )
    })
}

fn sign_in(db: &Db, username: &str, password: &str) -> Result<accounts::User, SignInError> {
    let (user, pw) = (username.to_string(), password.to_string());
    let throttle = Throttle::new();
    db.write(move |conn| {
        Ok::<_, api::error::ApiError>(accounts::sign_in(
            conn,
            &throttle,
            "default",
            &user,
            &pw,
            "",
            now(),
        ))
    })
    .unwrap_or_else(|e| Err(SignInError::Internal(e)))
}

#[tokio::test]
async fn an_invited_patient_creates_one_account_with_the_latest_code() {
    let s = start().await;
    let patient = id_of(&s.create(patient("inv-1")).await);
    let first = invite(&s, &patient).await;
    let second = invite(&s, &patient).await;
    assert_ne!(first, second);
    let db = Db::open(&s.database_url, 1).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    // the first code is void; a wrong birth date fails as a wrong code does
    let void = redeem(&db, &throttle, &first, Some("1970-01-01"), "alex", PASSWORD);
    assert!(matches!(void, Err(RedeemError::Code)), "{void:?}");
    let wrong_date = redeem(
        &db,
        &throttle,
        &second,
        Some("1971-01-01"),
        "alex",
        PASSWORD,
    );
    assert!(
        matches!(wrong_date, Err(RedeemError::Code)),
        "{wrong_date:?}"
    );
    let no_date = redeem(&db, &throttle, &second, None, "alex", PASSWORD);
    assert!(matches!(no_date, Err(RedeemError::Code)), "{no_date:?}");
    // the policy: short, common, or containing the username
    for (password, what) in [
        ("short", "short"),
        ("password123", "common"),
        ("alex-is-here-2026x", "username"),
    ] {
        let r = redeem(
            &db,
            &throttle,
            &second,
            Some("1970-01-01"),
            "alex",
            password,
        );
        assert!(matches!(r, Err(RedeemError::Password(_))), "{what}: {r:?}");
    }
    let bad_name = redeem(&db, &throttle, &second, Some("1970-01-01"), "a b", PASSWORD);
    assert!(
        matches!(bad_name, Err(RedeemError::Username(_))),
        "{bad_name:?}"
    );
    // typed in lower case with a dash, as people do
    let typed = format!("{}-{}", &second[..4], &second[4..]).to_lowercase();
    let user =
        redeem(&db, &throttle, &typed, Some("1970-01-01"), "Alex", PASSWORD).expect("redeemed");
    assert_eq!(user.patient(), Some(patient.as_str()));
    assert_eq!((user.username.as_str(), user.role), ("alex", Role::Patient));
    // used
    let again = redeem(
        &db,
        &throttle,
        &second,
        Some("1970-01-01"),
        "alex2",
        PASSWORD,
    );
    assert!(matches!(again, Err(RedeemError::Code)), "{again:?}");
    // sign-in: one error for an unknown name and a wrong password
    assert_eq!(
        sign_in(&db, "ALEX", PASSWORD).expect("signed in").user_id,
        user.user_id
    );
    assert!(matches!(
        sign_in(&db, "alex", "violet kettle harbour"),
        Err(SignInError::Wrong)
    ));
    assert!(matches!(
        sign_in(&db, "nobody", PASSWORD),
        Err(SignInError::Wrong)
    ));
    // invited again: the same account, new username and password, old grants void
    let third = invite(&s, &patient).await;
    let renewed = redeem(
        &db,
        &throttle,
        &third,
        Some("1970-01-01"),
        "alex.t",
        "amber gravel window seventy",
    )
    .expect("redeemed again");
    assert_eq!(renewed.user_id, user.user_id);
    assert!(matches!(
        sign_in(&db, "alex", PASSWORD),
        Err(SignInError::Wrong)
    ));
    assert!(sign_in(&db, "alex.t", "amber gravel window seventy").is_ok());
}

#[tokio::test]
async fn wrong_codes_are_throttled() {
    let s = start().await;
    let patient = id_of(&s.create(patient("inv-t")).await);
    let code = invite(&s, &patient).await;
    let db = Db::open(&s.database_url, 1).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    let mut throttled = false;
    for _ in 0..8 {
        match redeem(&db, &throttle, &code, Some("1999-09-09"), "alex", PASSWORD) {
            Err(RedeemError::Code) => {}
            Err(RedeemError::Throttled(_)) => throttled = true,
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled, "wrong birth dates with one code are throttled");
    // even the right birth date, while the code is throttled
    let r = redeem(&db, &throttle, &code, Some("1970-01-01"), "alex", PASSWORD);
    assert!(matches!(r, Err(RedeemError::Throttled(_))), "{r:?}");
}

#[tokio::test]
async fn two_redeems_of_one_code_give_one_account() {
    let s = start().await;
    let patient = id_of(&s.create(patient("inv-2")).await);
    let code = invite(&s, &patient).await;
    let db = Db::open(&s.database_url, 2).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    let runs: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|name| {
            let (db, t, code) = (db.clone(), throttle.clone(), code.clone());
            std::thread::spawn(move || redeem(&db, &t, &code, Some("1970-01-01"), name, PASSWORD))
        })
        .collect();
    let results: Vec<_> = runs
        .into_iter()
        .map(|r| r.join().expect("thread"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(r, Err(RedeemError::Code))),
        "{results:?}"
    );
    let listed = accounts::list_in(&s.database_url, "default").expect("list");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn only_writers_of_the_patient_invite_and_revoke() {
    let s = start().await;
    let patient = id_of(&s.create(patient("inv-3")).await);
    let own = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&patient)));
    let reader = client_with_token(&token(&s.database_url, "user/Patient.rs", None));
    let other_clinic = client_with_token(
        &api::auth::tokens::dev_token(
            &s.database_url,
            &api::auth::tokens::DevToken {
                scope: "system/*.cruds".into(),
                patient: None,
                tenant: "other-clinic".into(),
                minutes: 60,
                force: false,
            },
            now(),
        )
        .expect("token"),
    );
    for op in ["$invite", "$revoke-access"] {
        let url = s.url(&format!("Patient/{patient}/{op}"));
        for (client, status) in [
            (&own, StatusCode::FORBIDDEN),
            (&reader, StatusCode::FORBIDDEN),
            (&other_clinic, StatusCode::NOT_FOUND),
        ] {
            let res = client.post(&url).send().await.expect("POST");
            let issue = outcome(res, status).await;
            assert!(!issue.to_string().contains("Testperson"), "{op}");
        }
        let missing = s
            .post_raw(&format!("Patient/nobody/{op}"), FHIR_JSON, "")
            .await;
        outcome(missing, StatusCode::NOT_FOUND).await;
    }
    // revoke: the account is disabled and its grants void; the code of before too
    let code = invite(&s, &patient).await;
    let db = Db::open(&s.database_url, 1).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    let user =
        redeem(&db, &throttle, &code, Some("1970-01-01"), "sam", PASSWORD).expect("redeemed");
    let unused = invite(&s, &patient).await;
    let res = s
        .post_raw(&format!("Patient/{patient}/$revoke-access"), FHIR_JSON, "")
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(matches!(
        sign_in(&db, "sam", PASSWORD),
        Err(SignInError::Disabled)
    ));
    let (tenant, id) = ("default".to_string(), user.user_id.clone());
    let found = db
        .write(move |conn| accounts::find(conn, &tenant, &id))
        .expect("find");
    assert_eq!(found, None);
    let r = redeem(&db, &throttle, &unused, Some("1970-01-01"), "sam", PASSWORD);
    assert!(matches!(r, Err(RedeemError::Code)), "{r:?}");
    // a new invitation gives the access back
    let fresh = invite(&s, &patient).await;
    let back =
        redeem(&db, &throttle, &fresh, Some("1970-01-01"), "sam", PASSWORD).expect("redeemed");
    assert_eq!(back.user_id, user.user_id);
    assert!(back.tokens_after >= user.tokens_after);
    assert!(sign_in(&db, "sam", PASSWORD).is_ok());
    // both operations are in the CapabilityStatement
    let cs = json(s.get("metadata").await).await.to_string();
    for op in [
        "OperationDefinition/Patient-invite",
        "OperationDefinition/Patient-revoke-access",
    ] {
        assert!(cs.contains(op), "{op}");
    }
}

#[tokio::test]
async fn an_administrator_adds_lists_and_disables_staff() {
    let s = start().await;
    let practitioner = id_of(&s.create(practitioner()).await);
    let users = s.base.replace("/fhir", "/auth/users");
    let admin = client_with_token(&token(&s.database_url, "hep-admin", None));
    let body = json!({"practitioner": format!("Practitioner/{practitioner}"), "username": "Jordan", "role": "therapist"});
    // not an administrator
    let res = s
        .client
        .post(&users)
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // no such practitioner, a bad role
    let res = admin
        .post(&users)
        .json(&json!({"practitioner": "Practitioner/nobody", "username": "x1x", "role": "admin"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = admin
        .post(&users)
        .json(&json!({"practitioner": format!("Practitioner/{practitioner}"), "username": "x1x", "role": "patient"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = admin.post(&users).json(&body).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.expect("json");
    assert_eq!(added["username"], "jordan");
    let code = added["setup_code"].as_str().unwrap_or_default().to_string();
    assert_eq!(code.len(), 16, "{added}");
    let user_id = added["user_id"].as_str().unwrap_or_default().to_string();
    // a second account for the same name or person
    let res = admin.post(&users).json(&body).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let listed: Value = admin
        .get(&users)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["users"][0]["status"], "set-up pending", "{listed}");
    assert!(!listed.to_string().contains(&code));
    assert!(!listed.to_string().contains("argon2"));
    // the set-up code sets the password
    let db = Db::open(&s.database_url, 1).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    assert!(matches!(
        sign_in(&db, "jordan", PASSWORD),
        Err(SignInError::Wrong)
    ));
    let user = redeem(&db, &throttle, &code, None, "jordan", PASSWORD).expect("set up");
    assert_eq!(
        (user.role, user.user_id.as_str()),
        (Role::Therapist, user_id.as_str())
    );
    assert_eq!(user.fhir_user, format!("Practitioner/{practitioner}"));
    assert!(sign_in(&db, "jordan", PASSWORD).is_ok());
    let r = redeem(&db, &throttle, &code, None, "jordan", PASSWORD);
    assert!(matches!(r, Err(RedeemError::Code)), "used: {r:?}");
    // disabled
    let res = admin
        .delete(format!("{users}/{user_id}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(matches!(
        sign_in(&db, "jordan", PASSWORD),
        Err(SignInError::Disabled)
    ));
    let res = admin
        .delete(format!("{users}/nobody"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_command_line_adds_staff_and_prints_the_code_last() {
    use clap::Parser;
    let s = start().await;
    let practitioner = format!("Practitioner/{}", id_of(&s.create(practitioner()).await));
    let config = api::config::Config::try_parse_from([
        "hep-server",
        "user",
        "add",
        "--tenant",
        "default",
        "--practitioner",
        &practitioner,
        "--username",
        "ann",
        "--role",
        "admin",
    ])
    .expect("flags");
    assert!(matches!(
        config.command,
        Some(api::config::Command::User {
            command: api::config::UserCommand::Add { .. }
        })
    ));
    assert!(
        api::config::Config::try_parse_from([
            "hep-server",
            "user",
            "add",
            "--practitioner",
            &practitioner,
            "--username",
            "ann",
            "--role",
            "patient",
        ])
        .is_err()
    );
    let setup = accounts::add_staff_in(
        &s.database_url,
        "default",
        &practitioner,
        "ann",
        Role::Admin,
    )
    .expect("added");
    let printed = accounts::setup_message("ann", &setup);
    let code = printed
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    assert_eq!(code, setup.code);
    let listed = accounts::list_in(&s.database_url, "default").expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(accounts::describe(&listed[0])["role"], "admin");
    let db = Db::open(&s.database_url, 1).expect("db");
    let throttle = std::sync::Arc::new(Throttle::new());
    let user = redeem(&db, &throttle, &code, None, "ann", PASSWORD).expect("set up");
    assert_eq!(user.role, Role::Admin);
}
