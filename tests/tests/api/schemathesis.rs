//! Hostile input, generated: schemathesis (from PyPI) reads `/openapi.json` and sends every
//! operation examples, boundary values and fuzzed input with a valid token for each role. The
//! server must answer no 5xx, and every answer must match the schema the document gives for it
//! (status code, content type, body).
//!
//! schemathesis is installed on first use into a virtual environment under `target/`, pinned,
//! so `cargo test --workspace` needs nothing but Python 3 and the network to PyPI the first time.

use std::path::PathBuf;
use std::process::Command;

use docket_tests::python::{self, target_dir};
use docket_tests::spawn_app;

const VERSION: &str = "4.32.5";

/// The schemathesis executable, installing it when the pinned version is not there yet.
fn schemathesis() -> PathBuf {
    python::environment("schemathesis", VERSION, "schemathesis").join("bin/schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_role_without_5xx_and_as_documented() {
    let program = tokio::task::spawn_blocking(schemathesis)
        .await
        .expect("installing schemathesis");
    let app = spawn_app().await;
    let mut sessions = vec![
        ("admin", app.admin().await),
        ("customer", app.customer().await),
    ];
    for role in ["manager", "agent", "viewer"] {
        sessions.push((role, app.user(role).await));
    }
    // Something for the generated requests to find: a ticket, a comment.
    let customer = &sessions[1].1;
    let ticket = app.ticket_for(customer, "Printer on fire").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &sessions[0].1.token,
        serde_json::json!({"body": "Have you tried turning it off?"}),
    )
    .await
    .expect(201);

    let spec = format!("{}/openapi.json", app.address);
    let mut failures = Vec::new();
    for (role, session) in &sessions {
        let program = program.clone();
        let spec = spec.clone();
        let token = session.token.clone();
        let report = target_dir().join(format!("schemathesis-report-{role}"));
        let output = tokio::task::spawn_blocking(move || {
            Command::new(program)
                .arg("run")
                .arg(&spec)
                .args(["--header", &format!("Authorization: Bearer {token}")])
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--max-examples",
                    "30",
                    "--max-time",
                    "45",
                    "--seed",
                    "20261129",
                    "--generation-database",
                    "none",
                    // One worker: with two, hypothesis's lambda descriptions call `ast.parse`
                    // from two threads at once, which CPython 3.11 can fail with "AST
                    // constructor recursion depth mismatch" (a tool error, not a finding).
                    "--workers",
                    "1",
                    "--no-color",
                    "--report-dir",
                ])
                .arg(&report)
                // Signing out would end the session the rest of the run uses.
                .args(["--exclude-path", "/api/auth/logout"])
                .env("NO_COLOR", "1")
                // Its cache lands in the working directory; keep it out of the sources.
                .current_dir(target_dir())
                .output()
                .expect("schemathesis runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failures.push(format!(
                "--- as {role}:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        assert!(
            stdout.contains("Tested:"),
            "schemathesis did not test anything as {role}:\n{stdout}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
