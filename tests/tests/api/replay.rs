//! `docket-replay` against a real log.

use clap::Parser;
use docket_replay::{Cli, run};
use docket_tests::{OPENED_VERSION, spawn_app};
use serde_json::{Value, json};

async fn replay(database_url: &str, args: &[&str]) -> (u8, String) {
    let mut argv = vec!["docket-replay", "--database-url", database_url];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    let code = run(cli, &mut out).await.unwrap();
    let code = if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    };
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn history_and_state_at_an_instant_come_from_the_log_alone() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let ticket = app.ticket_for(&customer, "Replay me").await;
    let id = ticket["id"].as_str().unwrap();
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "in_progress"}),
    )
    .await
    .expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "note", "internal": true}),
    )
    .await
    .expect(201);

    let (code, text) = replay(&app.database_url, &["history", "TKT-000001"]).await;
    assert_eq!(code, 0);
    assert!(
        text.contains("TicketCreated") && text.contains("TicketStatusChanged"),
        "{text}"
    );
    let (_, json_text) = replay(&app.database_url, &["history", id, "--json"]).await;
    let history: Value = serde_json::from_str(&json_text).unwrap();
    let all_types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(all_types.contains(&"SlaPolicyApplied"), "{all_types:?}");
    let types: Vec<&str> = all_types
        .iter()
        .copied()
        .filter(|t| !t.starts_with("Sla"))
        .collect();
    // Auditors see everything, internal notes included.
    assert_eq!(
        types,
        [
            "TicketCreated",
            "TicketStatusChanged",
            "TicketStatusChanged",
            "CommentAdded"
        ]
    );
    assert_eq!(history["events"][0]["actor"]["role"], "customer");

    let at = between.to_rfc3339();
    let (_, then) = replay(&app.database_url, &["state", "1", "--at", &at, "--json"]).await;
    let then: Value = serde_json::from_str(&then).unwrap();
    assert_eq!(then["ticket"]["status"], "in_progress");
    assert_eq!(then["events_applied"], OPENED_VERSION + 1);
    let (_, now) = replay(
        &app.database_url,
        &["state", id, "--at", "2999-01-01T00:00:00Z", "--json"],
    )
    .await;
    let now: Value = serde_json::from_str(&now).unwrap();
    assert_eq!(now["ticket"]["status"], "resolved");
    assert_eq!(now["comments"][0]["internal"], true);
    let (_, before) = replay(
        &app.database_url,
        &["state", id, "--at", "2000-01-01T00:00:00Z"],
    )
    .await;
    assert!(before.contains("did not exist yet"), "{before}");

    let argv = [
        "docket-replay",
        "--database-url",
        &app.database_url,
        "history",
        "TKT-999999",
    ];
    let missing = run(Cli::try_parse_from(argv).unwrap(), &mut Vec::new()).await;
    assert!(missing.is_err_and(|e| e.to_string().contains("no ticket has number 999999")));
}

#[tokio::test]
async fn rebuild_and_verify_every_projection_from_the_command_line() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    let targets = json!({"first_response": 60, "resolution": 600, "escalation": 300});
    app.post(
        "/api/sla/policies",
        &manager.token,
        json!({"name": "Everyone", "position": 1,
               "targets": {"critical": targets, "high": targets, "medium": targets, "low": targets}}),
    )
    .await
    .expect(201);
    let mut last = String::new();
    for n in 0..5 {
        let ticket = app.ticket_for(&customer, &format!("Ticket {n}")).await;
        last = ticket["id"].as_str().unwrap().to_string();
        app.post(
            &format!("/api/tickets/{last}/comments"),
            &agent.token,
            json!({"body": "hello"}),
        )
        .await
        .expect(201);
    }
    app.patch(
        &format!("/api/tickets/{last}/status"),
        &agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);
    let (code, text) = replay(&app.database_url, &["rebuild", "--all"]).await;
    assert_eq!(code, 0, "{text}");
    let flow: (i64, i64) =
        sqlx::query_as("SELECT sum(opened)::bigint, sum(finished)::bigint FROM ticket_flow_days")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        flow,
        (5, 1),
        "the rebuilt flow counts five opened, one resolved"
    );
    for name in [
        "tickets",
        "users",
        "audit",
        "saved_searches",
        "sla_config",
        "ticket_flow",
    ] {
        assert!(text.contains(&format!("{name}: rebuilt")), "{text}");
    }
    let (code, text) = replay(&app.database_url, &["rebuild", "--all", "--verify"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("tickets: a fresh rebuild equals the live tables (0 differences)"),
        "{text}"
    );
    assert!(
        text.contains("ticket_flow: a fresh rebuild equals the live tables (0 differences)"),
        "{text}"
    );

    // Tamper with a read model: verify finds it and says where.
    sqlx::query("UPDATE tickets_view SET subject = 'tampered' WHERE number = 1")
        .execute(&app.pool)
        .await
        .unwrap();
    let (code, text) = replay(&app.database_url, &["rebuild", "tickets", "--verify"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("tampered")
            && text.contains("only_in_live")
            && text.contains("only_in_rebuild"),
        "{text}"
    );
    let (code, _) = replay(&app.database_url, &["rebuild", "tickets"]).await;
    assert_eq!(code, 0);
    let subject: String = sqlx::query_scalar("SELECT subject FROM tickets_view WHERE number = 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(subject, "Ticket 0", "the rebuild repaired it");

    let (code, status) = replay(&app.database_url, &["status"]).await;
    assert_eq!(code, 0);
    assert!(status.contains("running"), "{status}");
}

/// The workforce model counts its profile changes with a sequence that a rebuild draws afresh:
/// verify compares what the rows mean, and the text and the JSON agree.
#[tokio::test]
async fn verify_passes_on_a_log_with_workforce_history_and_both_outputs_agree() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let skill = app
        .post("/api/skills", &manager.token, json!({"name": "Billing"}))
        .await
        .expect(201);
    let skill_id = skill.body["id"].as_str().unwrap().to_string();
    let agent_path = format!("/api/agents/{}", agent.user_id);
    app.put(
        &format!("{agent_path}/skills"),
        &manager.token,
        json!({"skills": [{"skill_id": skill_id, "proficiency": 4}]}),
    )
    .await
    .expect(200);
    app.put(
        &format!("{agent_path}/capacity"),
        &manager.token,
        json!({"capacity": 7}),
    )
    .await
    .expect(200);
    let shift = app
        .post("/api/shifts/start", &agent.token, json!({}))
        .await
        .expect(201);
    for n in 0..3 {
        app.post(
            "/api/tickets",
            &agent.token,
            json!({"subject": format!("Routed {n}"), "description": "Billing trouble.",
                   "priority": "high", "customer_id": customer.user_id, "auto_assign": true}),
        )
        .await
        .expect(201);
    }
    app.put(
        &format!("{agent_path}/status"),
        &agent.token,
        json!({"status": "busy"}),
    )
    .await
    .expect(200);
    let shift_id = shift.body["id"].as_str().unwrap();
    app.post(
        &format!("/api/shifts/{shift_id}/end"),
        &agent.token,
        json!({}),
    )
    .await
    .expect(200);
    // Everything the writers wrote is in the model before the tools look.
    app.get(&agent_path, &manager.token).await.expect(200);

    let (code, text) = replay(&app.database_url, &["rebuild", "--all"]).await;
    assert_eq!(code, 0, "{text}");
    let (code, text) = replay(&app.database_url, &["rebuild", "--all", "--verify"]).await;
    assert_eq!(code, 0, "{text}");
    for name in docket_projections::registry::names() {
        assert!(
            text.contains(&format!(
                "{name}: a fresh rebuild equals the live tables (0 differences)"
            )),
            "{name}: {text}"
        );
    }
    let (code, json_text) = replay(
        &app.database_url,
        &["rebuild", "--all", "--verify", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{json_text}");
    let report: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(
        report["verified"].as_array().map(Vec::len),
        Some(docket_projections::registry::names().len()),
        "{report}"
    );
    assert_eq!(report["differing"], json!([]));

    // A real difference shows in both outputs, under the projection it is in.
    sqlx::query("UPDATE agent_profiles_view SET capacity = 3")
        .execute(&app.pool)
        .await
        .unwrap();
    let (code, text) = replay(&app.database_url, &["rebuild", "workforce", "--verify"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("workforce: ") && text.contains("differences"),
        "{text}"
    );
    let (code, json_text) = replay(
        &app.database_url,
        &["rebuild", "workforce", "--verify", "--json"],
    )
    .await;
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["verified"], json!([]), "{report}");
    assert_eq!(report["differing"], json!(["workforce"]), "{report}");
    assert!(
        report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["projection"] == "workforce" && d["table"] == "agent_profiles_view"),
        "{report}"
    );
}

#[tokio::test]
async fn what_if_sla_relives_tickets_under_candidate_policies_and_appends_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    // Under the default policy (four hours to answer a high ticket) both replies are in time.
    let slow = app.ticket_for(&customer, "Answered slowly").await;
    let quick = app.ticket_for(&customer, "Answered quickly").await;
    let (slow, quick) = (slow["id"].as_str().unwrap(), quick["id"].as_str().unwrap());
    app.post(
        &format!("/api/tickets/{quick}/comments"),
        &agent.token,
        json!({"body": "Right away"}),
    )
    .await
    .expect(201);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    app.post(
        &format!("/api/tickets/{slow}/comments"),
        &agent.token,
        json!({"body": "Sorry for the wait"}),
    )
    .await
    .expect(201);

    // The candidate: answer high tickets within two seconds.
    let slow_targets = json!({"first_response": 3600, "resolution": 86400, "escalation": 7200});
    let candidate = json!([{
        "name": "Two-second answers",
        "position": 1,
        "conditions": {"priorities": ["high"]},
        "targets": {
            "critical": slow_targets, "medium": slow_targets, "low": slow_targets,
            "high": {"first_response": 2, "resolution": 86400, "escalation": 7200}
        }
    }]);
    let file = std::env::temp_dir().join(format!("candidate-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&file, candidate.to_string()).unwrap();
    let file = file.to_str().unwrap().to_string();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = count().await;

    let (code, text) = replay(
        &app.database_url,
        &["what-if-sla", "--policies", &file, "--json"],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["tickets"], 2);
    assert_eq!(report["untracked_tickets"], 0);
    assert_eq!(report["candidate_policies"], json!(["Two-second answers"]));
    let line = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["priority"] == "high" && l["metric"] == "first_response")
        .unwrap();
    assert_eq!(line["actual"]["met"], 2);
    assert_eq!(line["actual_compliance"], 1.0);
    assert_eq!(line["candidate"]["met"], 1);
    assert_eq!(line["candidate"]["breached"], 1);
    assert_eq!(line["candidate_compliance"], 0.5);
    assert_eq!(report["flipped_tickets"], 1);
    assert_eq!(report["flips"][0]["ticket_id"], json!(slow));
    assert_eq!(report["flips"][0]["number"], "TKT-000001");
    assert_eq!(report["flips"][0]["actual"], "met");
    assert_eq!(report["flips"][0]["candidate"], "breached");

    let (_, table) = replay(&app.database_url, &["what-if-sla", "--policies", &file]).await;
    assert!(table.contains("1 tickets flip"), "{table}");
    assert!(
        table.contains("TKT-000001  high      first_response  met → breached"),
        "{table}"
    );
    // A range that holds no ticket.
    let (_, empty) = replay(
        &app.database_url,
        &[
            "what-if-sla",
            "--policies",
            &file,
            "--to",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&empty).unwrap()["tickets"], 0);

    // A bad candidate is refused with the reason.
    std::fs::write(&file, r#"[{"name": "Broken", "targets": {}}]"#).unwrap();
    let cli = Cli::try_parse_from([
        "docket-replay",
        "--database-url",
        &app.database_url,
        "what-if-sla",
        "--policies",
        &file,
    ])
    .unwrap();
    let refused = run(cli, &mut Vec::new()).await;
    assert!(refused.is_err());

    assert_eq!(count().await, before, "what-if appends nothing");
    let _ = std::fs::remove_file(&file);
}
