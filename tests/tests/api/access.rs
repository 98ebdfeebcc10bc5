//! Every route × every role, and every route without a valid token: exactly the allowed callers
//! get through, the others get 401 (who are you?), 403 (not allowed) or 404 (a customer asking
//! for someone else's ticket, which must not be seen to exist).

use docket_tests::{Session, TEST_JWT_SECRET, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Admin,
    Manager,
    Agent,
    Viewer,
    /// The customer who owns the fixture ticket.
    Owner,
    /// Another customer.
    Stranger,
}

const EVERYONE: &[Who] = &[
    Who::Admin,
    Who::Manager,
    Who::Agent,
    Who::Viewer,
    Who::Owner,
    Who::Stranger,
];
const STAFF: &[Who] = &[Who::Admin, Who::Manager, Who::Agent, Who::Viewer];
const WORKERS: &[Who] = &[Who::Admin, Who::Manager, Who::Agent];
const MANAGERS: &[Who] = &[Who::Admin, Who::Manager];

struct Fixture {
    sessions: Vec<(Who, Session)>,
    ticket: String,
    agent: Uuid,
    team: String,
}

impl Fixture {
    fn session(&self, who: Who) -> &Session {
        &self.sessions.iter().find(|(w, _)| *w == who).unwrap().1
    }
}

/// One route: how to call it (fresh each time, so each call can succeed), and who may.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static [Who],
    /// Callers who must not learn the resource exists (404, not 403).
    hidden_from: &'static [Who],
}

fn case(method: Method, path: String, body: Option<Value>, allowed: &'static [Who]) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
        hidden_from: &[],
    }
}

fn cases(f: &Fixture, n: usize) -> Vec<Case> {
    let t = &f.ticket;
    let unique = format!("{n}-{}", Uuid::new_v4().simple());
    let owned_ticket = |allowed| Case {
        hidden_from: &[Who::Stranger],
        ..case(Method::GET, String::new(), None, allowed)
    };
    vec![
        case(Method::GET, "/api/auth/me".into(), None, EVERYONE),
        case(Method::GET, "/api/users".into(), None, MANAGERS),
        case(
            Method::GET,
            format!("/api/users/{}", f.agent),
            None,
            MANAGERS,
        ),
        case(
            Method::POST,
            "/api/users".into(),
            Some(
                json!({"email": format!("u{unique}@docket.test"), "password": "password123", "full_name": "New Person", "role": "agent"}),
            ),
            &[Who::Admin],
        ),
        case(Method::GET, "/api/tickets".into(), None, EVERYONE),
        Case {
            path: format!("/api/tickets/{t}"),
            ..owned_ticket(&[
                Who::Admin,
                Who::Manager,
                Who::Agent,
                Who::Viewer,
                Who::Owner,
            ])
        },
        Case {
            path: format!("/api/tickets/{t}/history"),
            ..owned_ticket(&[
                Who::Admin,
                Who::Manager,
                Who::Agent,
                Who::Viewer,
                Who::Owner,
            ])
        },
        Case {
            path: format!("/api/tickets/{t}/timeline"),
            ..owned_ticket(&[
                Who::Admin,
                Who::Manager,
                Who::Agent,
                Who::Viewer,
                Who::Owner,
            ])
        },
        // Customers may not edit any ticket: the same 403 whether it exists or not.
        case(
            Method::PATCH,
            format!("/api/tickets/{t}"),
            Some(json!({"subject": format!("Renamed {unique}")})),
            WORKERS,
        ),
        case(
            Method::PUT,
            format!("/api/tickets/{t}/team"),
            Some(json!({"team_id": f.team})),
            WORKERS,
        ),
        Case {
            hidden_from: &[Who::Stranger],
            ..case(
                Method::POST,
                format!("/api/tickets/{t}/comments"),
                Some(json!({"body": "A comment", "internal": false})),
                &[Who::Admin, Who::Manager, Who::Agent, Who::Owner],
            )
        },
        case(Method::GET, "/api/search?q=printer".into(), None, EVERYONE),
        case(Method::GET, "/api/audit".into(), None, STAFF),
        case(Method::GET, "/api/sla/policies".into(), None, STAFF),
        case(Method::GET, "/api/sla/violations".into(), None, STAFF),
        case(Method::GET, format!("/api/sla/check/{t}"), None, STAFF),
        case(
            Method::POST,
            "/api/sla/calendars".into(),
            Some(
                json!({"name": format!("Cal {unique}"), "timezone": "Europe/Berlin", "always_open": true}),
            ),
            MANAGERS,
        ),
        case(Method::GET, "/api/escalation-rules".into(), None, STAFF),
        case(Method::GET, "/api/skills".into(), None, STAFF),
        case(
            Method::POST,
            "/api/skills".into(),
            Some(json!({"name": format!("Skill {unique}")})),
            MANAGERS,
        ),
        case(Method::GET, "/api/teams".into(), None, STAFF),
        case(
            Method::POST,
            "/api/teams".into(),
            Some(json!({"name": format!("Team {unique}")})),
            MANAGERS,
        ),
        case(
            Method::GET,
            format!("/api/teams/{}/members", f.team),
            None,
            STAFF,
        ),
        case(Method::GET, "/api/agents".into(), None, STAFF),
        case(Method::GET, "/api/agents/available".into(), None, STAFF),
        case(Method::GET, format!("/api/agents/{}", f.agent), None, STAFF),
        case(
            Method::PUT,
            format!("/api/agents/{}/capacity", f.agent),
            Some(json!({"capacity": 10 + n})),
            MANAGERS,
        ),
        case(
            Method::GET,
            format!("/api/shifts/agent/{}", f.agent),
            None,
            STAFF,
        ),
        case(Method::GET, "/api/tickets/queue".into(), None, STAFF),
        case(
            Method::GET,
            format!("/api/tickets/{t}/routing"),
            None,
            STAFF,
        ),
        case(
            Method::POST,
            "/api/tickets/process-queue".into(),
            None,
            WORKERS,
        ),
        case(
            Method::POST,
            "/api/workload/rebalance".into(),
            Some(json!({"dry_run": true})),
            MANAGERS,
        ),
        case(Method::GET, "/api/workload/metrics".into(), None, STAFF),
        case(Method::GET, "/api/workload/agents".into(), None, STAFF),
        case(Method::GET, "/api/workload/teams".into(), None, STAFF),
        case(Method::GET, "/api/workload/predictions".into(), None, STAFF),
        case(Method::GET, "/api/search/saved".into(), None, EVERYONE),
        case(Method::GET, "/api/api-keys".into(), None, STAFF),
    ]
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let viewer = app.user("viewer").await;
    let owner = app.customer().await;
    let stranger = app.customer().await;
    let ticket = app.ticket_for(&owner, "The printer is on fire").await;
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Fixture team"}))
        .await
        .expect(201)
        .body;
    Fixture {
        agent: agent.user_id,
        ticket: ticket["id"].as_str().unwrap().to_string(),
        team: team["id"].as_str().unwrap().to_string(),
        sessions: vec![
            (Who::Admin, admin),
            (Who::Manager, manager),
            (Who::Agent, agent),
            (Who::Viewer, viewer),
            (Who::Owner, owner),
            (Who::Stranger, stranger),
        ],
    }
}

async fn call(app: &TestApp, case: &Case, token: Option<&str>) -> (u16, String) {
    // Reads wait until the projections have the fixture.
    let response = app
        .request(
            case.method.clone(),
            &case.path,
            token,
            case.body.clone(),
            &[],
        )
        .await;
    (response.status.as_u16(), response.text)
}

/// Calls every route as each caller, with the credential `credential_of` gives them; the
/// routes that let in someone they should not, or keep out someone they should let in.
async fn judge(app: &TestApp, f: &Fixture, credential_of: &[(Who, String)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, who) in EVERYONE.iter().enumerate() {
        let credential = &credential_of.iter().find(|(w, _)| w == who).unwrap().1;
        for case in cases(f, n) {
            let (status, text) = call(app, &case, Some(credential)).await;
            let expected_ok = case.allowed.contains(who);
            let ok = (200..300).contains(&status);
            let refused_right = if case.hidden_from.contains(who) {
                status == 404
            } else {
                status == 403
            };
            if (expected_ok && !ok) || (!expected_ok && !refused_right) {
                failures.push(format!(
                    "{who:?} {} {} → {status} (expected {}): {text}",
                    case.method,
                    case.path,
                    if expected_ok {
                        "2xx"
                    } else if case.hidden_from.contains(who) {
                        "404"
                    } else {
                        "403"
                    }
                ));
            }
        }
    }
    failures
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_allowed() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    // Let the projections catch up with the fixture before judging reads.
    app.read_ticket(&f.session(Who::Admin).token, &f.ticket, 1)
        .await
        .expect(200);
    let tokens: Vec<(Who, String)> = f
        .sessions
        .iter()
        .map(|(who, session)| (*who, session.token.clone()))
        .collect();
    let failures = judge(&app, &f, &tokens).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_allowed_to_api_keys_of_each_role() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    app.read_ticket(&f.session(Who::Admin).token, &f.ticket, 1)
        .await
        .expect(200);
    // Staff drive the table with personal keys of their own role; customers have no keys and
    // keep their tokens.
    let mut credentials: Vec<(Who, String)> = Vec::new();
    for (who, session) in &f.sessions {
        let credential = if STAFF.contains(who) {
            app.api_key(
                &session.token,
                json!({"name": format!("{who:?} table"), "role": session.role}),
            )
            .await
            .0
        } else {
            session.token.clone()
        };
        credentials.push((*who, credential));
    }
    let failures = judge(&app, &f, &credentials).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_route_refuses_a_missing_forged_expired_or_deactivated_token() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let admin = f.session(Who::Admin).clone();
    let sign = |secret: &str, sub: &str, exp: i64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"sub": sub, "role": "admin", "iss": "docket", "typ": "access",
                    "iat": 1_000, "exp": exp, "jti": "x"}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let forged = sign(
        "another-secret-entirely-another-secret",
        &admin.user_id.to_string(),
        4_000_000_000,
    );
    let expired = sign(TEST_JWT_SECRET, &admin.user_id.to_string(), 2_000);
    // A manager whose account is then deactivated.
    let gone = app.user("manager").await;
    app.request(
        Method::PATCH,
        &format!("/api/users/{}", gone.user_id),
        Some(&admin.token),
        Some(json!({"active": false})),
        &[],
    )
    .await
    .expect(200);
    // API keys: a revoked one, and one made up with a real key's prefix.
    let (revoked, made) = app
        .api_key(&admin.token, json!({"name": "revoked", "role": "admin"}))
        .await;
    app.delete(
        &format!("/api/api-keys/{}", made["id"].as_str().unwrap()),
        &admin.token,
    )
    .await
    .expect(204);
    let made_up = format!("dk_{}_madeUpSecret", made["prefix"].as_str().unwrap());
    let mut failures = Vec::new();
    for case in cases(&f, 100) {
        for (label, token) in [
            ("no token", None),
            ("forged", Some(forged.as_str())),
            ("expired", Some(expired.as_str())),
            ("deactivated", Some(gone.token.as_str())),
            ("revoked key", Some(revoked.as_str())),
            ("made-up key", Some(made_up.as_str())),
        ] {
            let (status, text) = call(&app, &case, token).await;
            if status != 401 {
                failures.push(format!(
                    "{label}: {} {} → {status}: {text}",
                    case.method, case.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
