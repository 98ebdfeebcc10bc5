//! A mainstream generator must be able to use the contract: openapi-python-client (from PyPI)
//! generates a Python client from `/openapi.json`, skipping nothing and warning of nothing, and
//! the generated client signs in, opens a ticket, reads it at once, comments and reads the
//! history (`tests/clients/walkthrough.py`).
//!
//! The generator is installed on first use into a virtual environment under `target/`, pinned,
//! as schemathesis is, so `cargo test --workspace` needs nothing but Python 3 and the network to
//! PyPI the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

use docket_tests::python::{self, target_dir};
use docket_tests::spawn_app;

const VERSION: &str = "0.29.1";

/// The generator's virtual environment, installing the pinned version when it is not there.
fn generator() -> PathBuf {
    python::environment("openapi-python-client", VERSION, "openapi-python-client")
}

/// Generates the client from `document` into `out/docket_client`; the generator's whole output.
fn generate(venv: &Path, document: &Path, out: &Path) -> (bool, String) {
    // The generator formats what it writes with the `ruff` it installed beside itself, and
    // warns when it cannot find it: the environment's programs come first on the PATH.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let package = out.join("docket_client");
    let output = Command::new(venv.join("bin/openapi-python-client"))
        .args([
            "generate",
            "--overwrite",
            "--meta",
            "none",
            "--fail-on-warning",
        ])
        .arg("--path")
        .arg(document)
        .arg("--output-path")
        .arg(&package)
        .env("PATH", path)
        .output()
        .expect("openapi-python-client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs `walkthrough.py` on the client generated in `work` with `env`; what it printed, after
/// checking that it passed.
async fn walk(venv: &Path, work: &Path, env: &[(&str, String)]) -> String {
    let walkthrough = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/walkthrough.py");
    let mut command = Command::new(venv.join("bin/python"));
    command.arg(walkthrough).arg(work);
    for (name, value) in env {
        command.env(name, value);
    }
    let walked = tokio::task::spawn_blocking(move || command.output().expect("python runs"))
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&walked.stdout),
        String::from_utf8_lossy(&walked.stderr)
    );
    assert!(walked.status.success(), "the walk-through failed:\n{said}");
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_skips_nothing_and_walks_through_the_api() {
    let venv = tokio::task::spawn_blocking(generator)
        .await
        .expect("installing openapi-python-client");
    let app = spawn_app().await;
    let document = app
        .request(reqwest::Method::GET, "/openapi.json", None, None, &[])
        .await
        .expect(200);
    let work = target_dir().join(format!("python-client-{}", app.port));
    std::fs::create_dir_all(&work).unwrap();
    let spec = work.join("openapi.json");
    std::fs::write(&spec, &document.text).unwrap();

    let (venv_for_generation, spec_for_generation, work_for_generation) =
        (venv.clone(), spec.clone(), work.clone());
    let (generated, output) = tokio::task::spawn_blocking(move || {
        generate(
            &venv_for_generation,
            &spec_for_generation,
            &work_for_generation,
        )
    })
    .await
    .unwrap();
    assert!(generated, "the generator refused the document:\n{output}");
    // Nothing but the line saying where it wrote: any warning, any skipped operation or schema,
    // would be printed here.
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "the generator said more than it should:\n{output}"
    );
    assert!(lines[0].starts_with("Generating "), "{output}");
    // Every operation of the document has its module.
    let operations: Vec<String> = document.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str().map(str::to_string))
        .collect();
    assert!(operations.len() > 60, "{operations:?}");
    let api = work.join("docket_client/api");
    let modules: Vec<String> = std::fs::read_dir(&api)
        .unwrap()
        .flatten()
        .flat_map(|tag| {
            std::fs::read_dir(tag.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|m| {
            m.file_name()
                .to_str()
                .map(|n| n.trim_end_matches(".py").to_string())
        })
        .collect();
    for operation in &operations {
        assert!(modules.contains(operation), "no module for {operation}");
    }

    let customer = app.customer().await;
    let said = walk(
        &venv,
        &work,
        &[
            ("DOCKET_URL", app.address.clone()),
            ("DOCKET_EMAIL", customer.email.clone()),
            ("DOCKET_PASSWORD", "password123".to_string()),
        ],
    )
    .await;
    for step in [
        "login:",
        "create_ticket:",
        "get_ticket: 200",
        "add_comment:",
        "ticket_history:",
    ] {
        assert!(said.contains(step), "{step} missing:\n{said}");
    }

    // An integration: a service account's key drives the same client (as a bearer token and
    // in X-API-Key), and once revoked it stops working.
    let admin = app.admin().await;
    let service = app.service_account("agent").await;
    let (key, _) = app
        .api_key(
            &admin.token,
            serde_json::json!({"name": "generated client", "role": "agent", "user_id": service}),
        )
        .await;
    let said = walk(
        &venv,
        &work,
        &[
            ("DOCKET_URL", app.address.clone()),
            ("DOCKET_API_KEY", key.clone()),
            ("DOCKET_CUSTOMER_ID", customer.user_id.to_string()),
        ],
    )
    .await;
    for step in [
        "me: the key in X-API-Key acts as",
        "service=True",
        "create_ticket:",
        "get_ticket: 200",
        "revoke_api_key:",
        "after_revoke: 401",
    ] {
        assert!(said.contains(step), "{step} missing:\n{said}");
    }
    app.get("/api/auth/me", &key)
        .await
        .expect_problem(401, "unauthenticated");
    let _ = std::fs::remove_dir_all(&work);
}
