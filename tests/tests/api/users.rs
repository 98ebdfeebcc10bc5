use docket_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn an_admin_creates_accounts_of_every_role() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for role in ["admin", "manager", "agent", "customer", "viewer"] {
        let created = app
            .post(
                "/api/users",
                &admin.token,
                json!({"email": format!("{role}@docket.test"), "password": "password123",
                       "full_name": format!("The {role}"), "role": role}),
            )
            .await
            .expect(201);
        assert_eq!(created.body["role"], role);
        assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
        let session = app
            .login(&format!("{role}@docket.test"), "password123")
            .await;
        assert_eq!(session.role, role);
    }
    let bad = app
        .post(
            "/api/users",
            &admin.token,
            json!({"email": "x@docket.test", "password": "password123", "full_name": "X", "role": "superuser"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(bad.body["field"], "role");
}

#[tokio::test]
async fn only_admins_create_and_edit_accounts_and_managers_may_look() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let new_user = json!({"email": "n@docket.test", "password": "password123", "full_name": "N", "role": "agent"});
    for session in [&manager, &agent, &customer] {
        app.post("/api/users", &session.token, new_user.clone())
            .await
            .expect_problem(403, "forbidden");
        app.patch(
            &format!("/api/users/{}", agent.user_id),
            &session.token,
            json!({"full_name": "Renamed"}),
        )
        .await
        .expect_problem(403, "forbidden");
    }
    let listed = app
        .get("/api/users?role=agent", &manager.token)
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], json!(agent.user_id));
    app.get(&format!("/api/users/{}", agent.user_id), &manager.token)
        .await
        .expect(200);
    for session in [&agent, &customer] {
        app.get("/api/users", &session.token)
            .await
            .expect_problem(403, "forbidden");
    }
}

#[tokio::test]
async fn an_admin_edits_an_account_and_a_role_change_applies_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Role change").await;
    let path = format!("/api/users/{}", agent.user_id);
    let edited = app
        .patch(
            &path,
            &admin.token,
            json!({"full_name": "Agnes Agent", "email": "agnes@docket.test", "role": "viewer"}),
        )
        .await
        .expect(200);
    assert_eq!(edited.body["full_name"], "Agnes Agent");
    assert_eq!(edited.body["email"], "agnes@docket.test");
    assert_eq!(edited.body["role"], "viewer");
    // Same token, new role: a viewer may read but not work tickets.
    app.post(
        &format!("/api/tickets/{}/comments", ticket["id"].as_str().unwrap()),
        &agent.token,
        json!({"body": "hello"}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.login("agnes@docket.test", "password123").await;

    let me = app.get(&path, &admin.token).await.expect(200);
    assert_eq!(me.body["version"], 3);
}

#[tokio::test]
async fn an_admin_cannot_deactivate_or_demote_themself() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let path = format!("/api/users/{}", admin.user_id);
    app.patch(&path, &admin.token, json!({"active": false}))
        .await
        .expect_problem(409, "own-account");
    app.patch(&path, &admin.token, json!({"role": "agent"}))
        .await
        .expect_problem(409, "own-account");
}

#[tokio::test]
async fn an_email_already_in_use_cannot_be_taken_by_an_edit() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let other = app.user("agent").await;
    app.patch(
        &format!("/api/users/{}", agent.user_id),
        &admin.token,
        json!({"email": other.email}),
    )
    .await
    .expect_problem(409, "email-taken");
    app.login(&agent.email, "password123").await;
}

#[tokio::test]
async fn an_admin_resets_a_password() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    app.patch(
        &format!("/api/users/{}", agent.user_id),
        &admin.token,
        json!({"password": "reset-by-admin"}),
    )
    .await
    .expect(200);
    app.login(&agent.email, "reset-by-admin").await;
}

#[tokio::test]
async fn an_unknown_user_is_a_404() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.get(
        &format!("/api/users/{}", uuid::Uuid::new_v4()),
        &admin.token,
    )
    .await
    .expect_problem(404, "not-found");
}
