//! The bad-input corpus: every write endpoint, each field of its body broken in every way a client
//! or an attacker breaks it (a NUL, a terminal escape, a C1 control, an over-long string, the wrong
//! JSON type, left out, an unknown field beside it), plus broken JSON, duplicate keys, a wrong media
//! type and bad path ids. Each case must answer 4xx application/problem+json naming the field, and
//! write nothing: not a commit, not a row.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app};

/// Counts of everything a command may write.
#[derive(Debug, PartialEq, Eq)]
struct Written {
    commits: u64,
    rows: Vec<i64>,
}

const TABLES: [&str; 10] = [
    "clinics",
    "therapists",
    "payers",
    "patients",
    "patient_phi",
    "coverage_phi",
    "referrals",
    "session_slots",
    "api_keys",
    "idempotency_records",
];

async fn written(app: &TestApp) -> Written {
    let mut rows = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        rows.push(app.rows(table).await);
    }
    Written {
        commits: app.total_commits().await,
        rows,
    }
}

/// One request that must be refused.
struct Case {
    label: String,
    path: String,
    key: String,
    body: Vec<u8>,
    content_type: &'static str,
    field: String,
}

/// An endpoint and a body it accepts, with the keys that may be left out.
struct Endpoint {
    path: String,
    key: String,
    body: Value,
    optional: &'static [&'static str],
}

/// Every way of breaking one field of `endpoint`'s body, recursing into objects.
fn field_cases(endpoint: &Endpoint, cases: &mut Vec<Case>) {
    let mut paths = Vec::new();
    collect_paths(&endpoint.body, String::new(), &mut paths);
    for (path, value) in paths {
        let leaf = path.rsplit('.').next().unwrap_or(&path).to_owned();
        let mut variants: Vec<(&str, Value)> = Vec::new();
        if let Value::String(text) = &value {
            variants.push(("NUL", Value::String(format!("{text}\u{0}x"))));
            variants.push(("ESC", Value::String(format!("\u{1b}[31m{text}"))));
            variants.push(("C1", Value::String(format!("{text}\u{85}"))));
            variants.push(("over-long", Value::String("x".repeat(2_001))));
            variants.push(("wrong type", json!(12_345)));
        } else if value.is_object() || value.is_array() {
            variants.push(("wrong type", json!(12_345)));
        } else {
            variants.push(("wrong type", json!("text")));
        }
        for (what, replacement) in variants {
            let mut body = endpoint.body.clone();
            set(&mut body, &path, Some(replacement));
            cases.push(Case {
                label: format!("{} {path}: {what}", endpoint.path),
                path: endpoint.path.clone(),
                key: endpoint.key.clone(),
                body: serde_json::to_vec(&body).expect("JSON"),
                content_type: "application/json",
                field: path.clone(),
            });
        }
        if !endpoint.optional.contains(&leaf.as_str()) {
            let mut body = endpoint.body.clone();
            set(&mut body, &path, None);
            cases.push(Case {
                label: format!("{} {path}: missing", endpoint.path),
                path: endpoint.path.clone(),
                key: endpoint.key.clone(),
                body: serde_json::to_vec(&body).expect("JSON"),
                content_type: "application/json",
                field: path.clone(),
            });
        }
    }
    let mut body = endpoint.body.clone();
    body["surplus"] = json!("x");
    cases.push(Case {
        label: format!("{} unknown field", endpoint.path),
        path: endpoint.path.clone(),
        key: endpoint.key.clone(),
        body: serde_json::to_vec(&body).expect("JSON"),
        content_type: "application/json",
        field: "surplus".to_owned(),
    });
    let text = serde_json::to_string(&endpoint.body).expect("JSON");
    cases.push(Case {
        label: format!("{} truncated JSON", endpoint.path),
        path: endpoint.path.clone(),
        key: endpoint.key.clone(),
        body: text.as_bytes()[..text.len() / 2].to_vec(),
        content_type: "application/json",
        field: "body".to_owned(),
    });
    if let Some((first, _)) = endpoint
        .body
        .as_object()
        .and_then(|fields| fields.iter().next())
    {
        let duplicated = format!("{{\"{first}\":null,{}", &text[1..]);
        cases.push(Case {
            label: format!("{} duplicate key {first}", endpoint.path),
            path: endpoint.path.clone(),
            key: endpoint.key.clone(),
            body: duplicated.into_bytes(),
            content_type: "application/json",
            field: first.clone(),
        });
    }
    cases.push(Case {
        label: format!("{} form-encoded", endpoint.path),
        path: endpoint.path.clone(),
        key: endpoint.key.clone(),
        body: b"name=x".to_vec(),
        content_type: "application/x-www-form-urlencoded",
        field: "Content-Type".to_owned(),
    });
}

fn collect_paths(value: &Value, prefix: String, paths: &mut Vec<(String, Value)>) {
    if let Value::Object(fields) = value {
        for (name, item) in fields {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            paths.push((path.clone(), item.clone()));
            // `kind` tags an enum: breaking the tag is one case, its siblings are the variant's.
            if item.is_object() {
                collect_paths(item, path, paths);
            }
        }
    }
}

fn set(body: &mut Value, path: &str, value: Option<Value>) {
    let mut target = body;
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path");
    for part in parts {
        target = &mut target[part];
    }
    let object = target.as_object_mut().expect("an object");
    match value {
        Some(value) => {
            object.insert(last.to_owned(), value);
        }
        None => {
            object.remove(last);
        }
    }
}

async fn send(app: &TestApp, case: &Case) -> Reply {
    app.post(&case.path, &case.key)
        .header("content-type", case.content_type)
        .raw_body(case.body.clone())
        .send()
        .await
}

// Its figures are printed for the record (`--nocapture`): they go into the closing notes.
#[allow(clippy::print_stdout)]
#[tokio::test]
async fn every_bad_input_is_refused_naming_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.checked_in_session(&world).await;
    let admin = app.admin_key.clone();
    let desk = world.front_desk.clone();
    let endpoints = [
        Endpoint {
            path: "/v1/api-keys".to_owned(),
            key: admin.clone(),
            body: json!({"role": "analyst", "label": "reports", "clinic_ids": [world.clinic]}),
            optional: &["clinic_ids"],
        },
        Endpoint {
            path: "/v1/clinics".to_owned(),
            key: admin.clone(),
            body: json!({"name": "Uptown", "npi": "1234567893", "tax_id": "12-3456789",
                "address_line": "2 Main St", "city": "Springfield", "state": "NY",
                "postal_code": "10001", "time_zone": "America/New_York", "place_of_service": "11"}),
            optional: &[],
        },
        Endpoint {
            path: "/v1/therapists".to_owned(),
            key: admin.clone(),
            body: json!({"name": "Sam Lee", "npi": "1558598797", "licence_number": "MT-2",
                "licence_state": "NY"}),
            optional: &[],
        },
        Endpoint {
            path: "/v1/payers".to_owned(),
            key: admin.clone(),
            body: json!({"name": "Other Health", "rules_key": "other-health"}),
            optional: &[],
        },
        Endpoint {
            path: "/v1/patients".to_owned(),
            key: desk.clone(),
            body: json!({"given_name": "Ann", "family_name": "Roe", "date_of_birth": "1975-01-02"}),
            optional: &[],
        },
        Endpoint {
            path: "/v1/coverages".to_owned(),
            key: desk.clone(),
            body: json!({"patient_id": world.patient, "payer_id": world.payer,
                "member_id": "W1", "valid_from": "2026-01-01", "valid_to": "2026-12-31"}),
            optional: &["valid_to"],
        },
        Endpoint {
            path: "/v1/referrals".to_owned(),
            key: desk.clone(),
            body: json!({"patient_id": world.patient, "referring_npi": "1234567893",
                "diagnoses": ["M54.50"], "authorised_visits": 4, "issued_on": "2026-03-01",
                "expires_on": "2026-05-31"}),
            optional: &[],
        },
        Endpoint {
            path: "/v1/sessions".to_owned(),
            key: desk.clone(),
            body: json!({"clinic_id": world.clinic, "therapist_id": world.therapist,
                "patient_id": world.patient,
                "payment": {"kind": "payer", "payer_id": world.payer, "coverage_id": world.coverage},
                "referral_id": world.referral, "scheduled_start": "2026-03-10T18:00:00Z",
                "planned_minutes": 60}),
            optional: &["referral_id"],
        },
        Endpoint {
            path: format!("/v1/sessions/{session}/services"),
            key: desk.clone(),
            body: json!({"technique": "swedish_massage", "code": "97124", "minutes": 20,
                "body_region": "lower_back", "body_side": "left", "description": "gentle"}),
            optional: &["body_side", "description"],
        },
        Endpoint {
            path: format!("/v1/sessions/{session}/modalities"),
            key: desk.clone(),
            body: json!({"code": "97010", "minutes": 10}),
            optional: &[],
        },
        Endpoint {
            path: format!("/v1/sessions/{session}/diagnoses"),
            key: desk.clone(),
            body: json!({"codes": ["M54.50"]}),
            optional: &[],
        },
        Endpoint {
            path: format!("/v1/sessions/{session}/cancel"),
            key: desk.clone(),
            body: json!({"reason": "patient ill"}),
            optional: &[],
        },
        Endpoint {
            path: format!("/v1/sessions/{session}/amend"),
            key: desk.clone(),
            body: json!({"reason": "late note"}),
            optional: &[],
        },
    ];
    let mut cases = Vec::new();
    for endpoint in &endpoints {
        field_cases(endpoint, &mut cases);
    }
    for path in [
        "/v1/sessions/not-a-uuid/check-in",
        "/v1/sessions/1234/complete",
        "/v1/claims/%00/submit",
        "/v1/claims/zzz/write-off",
    ] {
        cases.push(Case {
            label: format!("{path}: bad path id"),
            path: path.to_owned(),
            key: desk.clone(),
            body: b"{}".to_vec(),
            content_type: "application/json",
            field: path
                .split('/')
                .nth(2)
                .map(|resource| {
                    if resource == "claims" {
                        "claim_id"
                    } else {
                        "id"
                    }
                })
                .unwrap_or("id")
                .to_owned(),
        });
    }

    let before = written(&app).await;
    let (mut problems, mut unchanged) = (0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let reply = send(&app, case).await;
        let is_problem = reply.status.is_client_error()
            && reply.content_type() == "application/problem+json"
            && reply.field() == case.field
            && reply.body["reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty());
        if is_problem {
            problems += 1;
        } else {
            failures.push(format!("{}: {} {}", case.label, reply.status, reply.body));
        }
        let after = written(&app).await;
        if after == before {
            unchanged += 1;
        } else {
            failures.push(format!("{}: wrote {after:?} (was {before:?})", case.label));
        }
    }
    println!(
        "bad-input corpus: {} cases, {problems} answered 4xx problem+json naming the field, \
         {unchanged} wrote nothing",
        cases.len()
    );
    assert!(cases.len() >= 250, "the corpus has {} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
