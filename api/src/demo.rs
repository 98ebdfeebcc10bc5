//! Demo data for `docket serve --demo`: an administrator, three agents, three customers and
//! about fifty tickets with realistic histories, all made through the same commands the API
//! uses, so the log, the audit trail and every projection look exactly as in real use.
//! Deterministic (seeded), and loaded only once per database.

use chrono::{DateTime, Duration, Utc};
use docket_domain::ticket::{
    AddComment, AssignTicket, ChangeTicketStatus, EscalateTicket, OpenTicket, TicketCommand,
    UserStanding,
};
use docket_domain::user::Registration;
use docket_domain::values::{
    Category, CommentBody, CommentId, Description, Email, FullName, Reason, Subject, Tags, TicketId,
};
use docket_domain::{Actor, Priority, Role, TicketStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::app::accounts::passwords::Password;
use crate::app::accounts::{self, NewAccount, UserView};
use crate::app::{App, AppError, Caller, Origin, automations, tickets};

pub const ADMIN: (&str, &str) = ("admin@example.com", "admin123");
pub const PASSWORD: &str = "password123";
const AGENTS: [(&str, &str); 3] = [
    ("agent1@example.com", "Priya Raman"),
    ("agent2@example.com", "Marcus Chen"),
    ("agent3@example.com", "Sofia Alvarez"),
];
const CUSTOMERS: [(&str, &str); 3] = [
    ("customer1@example.com", "Dana Whitfield"),
    ("customer2@example.com", "Omar Haddad"),
    ("customer3@example.com", "Lena Fischer"),
];
const TICKETS: usize = 50;

/// (subject, description, category, tags)
const PROBLEMS: [(&str, &str, &str, &[&str]); 16] = [
    (
        "Cannot log in after password reset",
        "I reset my password this morning and now the login page says my credentials are invalid.",
        "account",
        &["login", "password"],
    ),
    (
        "Invoice shows the wrong VAT rate",
        "Our November invoice applies 19% VAT but we are registered in Austria (20%).",
        "billing",
        &["invoice", "vat"],
    ),
    (
        "VPN disconnects every hour",
        "Since Monday the VPN client drops the connection roughly every 60 minutes.",
        "network",
        &["vpn"],
    ),
    (
        "Export to Excel times out",
        "Exporting the quarterly report to Excel spins for two minutes and then fails.",
        "reports",
        &["export", "excel"],
    ),
    (
        "Two-factor codes not arriving by SMS",
        "None of our team receives the SMS codes since yesterday afternoon.",
        "account",
        &["2fa", "sms"],
    ),
    (
        "Charged twice for the annual plan",
        "Our card was charged twice on the 3rd for the annual plan.",
        "billing",
        &["refund"],
    ),
    (
        "Webhook deliveries failing with 401",
        "Our endpoint returns 401 since we rotated the signing secret.",
        "integrations",
        &["webhooks"],
    ),
    (
        "Dashboard loads very slowly",
        "The main dashboard takes over 20 seconds to load for our managers.",
        "performance",
        &["dashboard"],
    ),
    (
        "Need to add five more seats",
        "We are onboarding five new colleagues next week and need seats for them.",
        "billing",
        &["seats"],
    ),
    (
        "Email notifications go to spam",
        "Notification emails from your system land in our spam folder.",
        "email",
        &["deliverability"],
    ),
    (
        "API rate limit too low for sync job",
        "Our nightly sync hits the rate limit after about 4,000 requests.",
        "integrations",
        &["api", "rate-limit"],
    ),
    (
        "Printer mapping lost after update",
        "After last night's update nobody in the office can print to the 2nd floor printer.",
        "hardware",
        &["printer"],
    ),
    (
        "Data import rejects UTF-8 names",
        "Importing contacts fails for names with accents such as Zoë or José.",
        "data",
        &["import", "unicode"],
    ),
    (
        "Request to delete my account data",
        "Please delete all personal data you hold about me under GDPR Art. 17.",
        "privacy",
        &["gdpr"],
    ),
    (
        "Mobile app crashes on start",
        "The iOS app crashes immediately after the splash screen since version 4.2.",
        "mobile",
        &["ios", "crash"],
    ),
    (
        "SSO login loops back to the start page",
        "Signing in through our Okta SSO returns us to the start page endlessly.",
        "account",
        &["sso", "okta"],
    ),
];

const AGENT_REPLIES: [&str; 6] = [
    "Thanks for reporting this. I'm looking into it now.",
    "Could you send us a screenshot and the exact time it happened?",
    "We've identified the cause and are deploying a fix.",
    "I've applied a change on our side; could you try again?",
    "This should be resolved now. Let us know if it happens again.",
    "I've reproduced the problem and passed it to our engineers.",
];
const CUSTOMER_REPLIES: [&str; 4] = [
    "Thanks, here are the details you asked for.",
    "It's still happening for us, unfortunately.",
    "Tried again just now and it works. Thank you!",
    "Any update on this? It's blocking our team.",
];
const INTERNAL_NOTES: [&str; 4] = [
    "Customer is on the enterprise plan; prioritise.",
    "Same root cause as last week's incident, see the postmortem.",
    "Checked the logs: errors started after the 02:00 deploy.",
    "Waiting on the payments provider for confirmation.",
];

struct Cast {
    admin: UserView,
    agents: Vec<UserView>,
    customers: Vec<UserView>,
}

async fn account(
    app: &App,
    email: &str,
    name: &str,
    password: &str,
    role: Role,
    registration: Registration,
) -> Result<UserView, AppError> {
    let invalid = |e: docket_domain::ValidationError| AppError::invalid(e.field, e.reason);
    accounts::register(
        app,
        NewAccount {
            email: Email::parse(email).map_err(invalid)?,
            password: Some(Password::parse("password", password)?),
            full_name: FullName::parse(name).map_err(invalid)?,
            role,
            registration,
            service: false,
        },
        Origin::system("demo").metadata(None),
    )
    .await
}

async fn already_loaded(app: &App) -> Result<bool, AppError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM credentials WHERE email = $1)")
        .bind(ADMIN.0)
        .fetch_one(&app.pool)
        .await
        .map_err(AppError::database)
}

pub async fn load(app: &App) -> Result<(), AppError> {
    if already_loaded(app).await? {
        tracing::info!("demo data already loaded");
        return Ok(());
    }
    let admin = account(
        app,
        ADMIN.0,
        "Ada Admin",
        ADMIN.1,
        Role::Admin,
        Registration::Bootstrap,
    )
    .await?;
    let by_admin = Registration::ByAdmin(Actor::new(admin.id, Role::Admin));
    let mut agents = Vec::new();
    for (email, name) in AGENTS {
        agents.push(account(app, email, name, PASSWORD, Role::Agent, by_admin).await?);
    }
    let mut customers = Vec::new();
    for (email, name) in CUSTOMERS {
        customers.push(
            account(
                app,
                email,
                name,
                PASSWORD,
                Role::Customer,
                Registration::SelfService,
            )
            .await?,
        );
    }
    workforce(app, &admin, &agents).await?;
    let cast = Cast {
        admin,
        agents,
        customers,
    };
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let now = app.time.now();
    let mut openings: Vec<DateTime<Utc>> = (0..TICKETS)
        .map(|_| now - Duration::minutes(rng.gen_range(30..14 * 24 * 60)))
        .collect();
    openings.sort();
    for opened_at in openings {
        ticket(app, &cast, &mut rng, opened_at, now).await?;
    }
    automation_examples(app, &cast.admin).await?;
    tracing::info!(tickets = TICKETS, "loaded demo data");
    Ok(())
}

/// Two automation rules to look at and change: an event rule and a time-based one. The time-based
/// one acts at once on the demo's tickets left pending for two days (their history shows it).
async fn automation_examples(app: &App, admin: &UserView) -> Result<(), AppError> {
    let caller = Caller::from(admin.clone());
    let origin = Origin::system("demo");
    let rules = [
        serde_json::json!({
            "name": "Outages are critical",
            "position": 1,
            "trigger": {"type": "event", "events": ["ticket.created"]},
            "conditions": {"any": [
                {"field": "subject", "operator": "contains", "value": "outage"},
                {"field": "description", "operator": "contains", "value": "outage"}
            ]},
            "actions": [
                {"type": "set_priority", "priority": "critical"},
                {"type": "add_tags", "tags": ["outage"]}
            ]
        }),
        serde_json::json!({
            "name": "Nudge after 48 hours pending",
            "position": 2,
            "trigger": {"type": "time"},
            "conditions": {"all": [
                {"field": "status", "operator": "is", "value": "pending"},
                {"field": "hours_since_status_change", "operator": "greater_than", "value": 48},
                {"field": "tags", "operator": "not_contains", "value": "nudged"}
            ]},
            "actions": [
                {"type": "add_tags", "tags": ["nudged"]},
                {"type": "add_public_reply",
                 "body": "Is this still a problem for you? Reply here and we will pick it up."}
            ]
        }),
    ];
    for rule in rules {
        automations::create(app, &caller, &origin, &rule).await?;
    }
    Ok(())
}

/// The skill catalogue, a team with a lead, and the agents' skills. Nobody is on shift: the
/// demo routes nothing until someone starts one.
async fn workforce(app: &App, admin: &UserView, agents: &[UserView]) -> Result<(), AppError> {
    use docket_domain::values::{SkillId, SkillName, TeamId, TeamName, TeamRole};
    use docket_domain::workforce::agent::{AgentCommand, AgentSkill};
    use docket_domain::workforce::skill::SkillCommand;
    use docket_domain::workforce::team::TeamCommand;

    let refused = |e| AppError::internal(format!("demo command refused: {e:?}"));
    let metadata = || Origin::system("demo").metadata(Some(actor(admin)));
    let now = app.time.now();
    let mut skills = Vec::new();
    for name in ["Account Access", "Billing", "Network"] {
        let name = text(SkillName::parse, name)?;
        let id = SkillId::for_name(&name);
        app.skills
            .execute(
                &id.to_string(),
                None,
                SkillCommand::Create {
                    name,
                    description: None,
                    actor: actor(admin),
                    at: now,
                },
                metadata(),
            )
            .await
            .map_err(refused)?;
        skills.push(id);
    }
    let team = TeamId(Uuid::now_v7());
    app.teams
        .execute(
            &team.to_string(),
            Some(0),
            TeamCommand::Create {
                team_id: team,
                name: text(TeamName::parse, "Tier 1")?,
                description: None,
                actor: actor(admin),
                at: now,
            },
            metadata(),
        )
        .await
        .map_err(refused)?;
    for (n, agent) in agents.iter().enumerate() {
        app.teams
            .execute(
                &team.to_string(),
                None,
                TeamCommand::AddMember {
                    member: standing(agent),
                    team_role: if n == 0 {
                        TeamRole::Lead
                    } else {
                        TeamRole::Member
                    },
                    actor: actor(admin),
                    at: now,
                },
                metadata(),
            )
            .await
            .map_err(refused)?;
        // Each agent is strongest in one skill and knows the next a little.
        let held = vec![
            AgentSkill::new(skills[n % skills.len()], 5),
            AgentSkill::new(skills[(n + 1) % skills.len()], 2),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::internal(format!("demo skill invalid: {e}")))?;
        app.agents
            .execute(
                &agent.id.to_string(),
                None,
                AgentCommand::SetSkills {
                    agent: standing(agent),
                    skills: held,
                    actor: actor(admin),
                    at: now,
                },
                metadata(),
            )
            .await
            .map_err(refused)?;
    }
    Ok(())
}

fn standing(user: &UserView) -> UserStanding {
    user.standing()
}

fn actor(user: &UserView) -> Actor {
    Actor::new(user.id, user.role)
}

async fn run(
    app: &App,
    id: TicketId,
    command: TicketCommand,
    by: &UserView,
) -> Result<(), AppError> {
    let metadata = Origin::system("demo").metadata(Some(actor(by)));
    app.tickets
        .execute(&id.to_string(), None, command, metadata)
        .await
        .map(|_| ())
        .map_err(|e| AppError::internal(format!("demo command refused: {e:?}")))
}

fn text<T>(
    parse: fn(&str) -> Result<T, docket_domain::ValidationError>,
    raw: &str,
) -> Result<T, AppError> {
    parse(raw).map_err(|e| AppError::internal(format!("demo text invalid: {e}")))
}

/// One ticket and a plausible life: triage, replies, notes, sometimes an escalation, often a
/// resolution; every step a little later than the one before and never in the future.
async fn ticket(
    app: &App,
    cast: &Cast,
    rng: &mut StdRng,
    opened_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let (subject, description, category, tags) = PROBLEMS[rng.gen_range(0..PROBLEMS.len())];
    let customer = &cast.customers[rng.gen_range(0..cast.customers.len())];
    let agent = &cast.agents[rng.gen_range(0..cast.agents.len())];
    let priority = match rng.gen_range(0..100) {
        0..=9 => Priority::Critical,
        10..=34 => Priority::High,
        35..=74 => Priority::Medium,
        _ => Priority::Low,
    };
    let number = tickets::allocate_number(app).await?;
    let id = TicketId(Uuid::now_v7());
    run(
        app,
        id,
        TicketCommand::Open(OpenTicket {
            ticket_id: id,
            number,
            customer: standing(customer),
            subject: text(Subject::parse, subject)?,
            description: text(Description::parse, description)?,
            priority,
            category: Some(text(Category::parse, category)?),
            tags: Tags::parse(tags).map_err(|e| AppError::internal(e.to_string()))?,
            sla: (*app.sla_catalog.current(&app.pool).await?).clone(),
            actor: actor(customer),
            at: opened_at,
        }),
        customer,
    )
    .await?;

    let mut at = opened_at;
    let mut step = |rng: &mut StdRng| -> Option<DateTime<Utc>> {
        at += Duration::minutes(rng.gen_range(5..240));
        (at < now).then_some(at)
    };
    let comment = |body: &str, internal: bool, by: &UserView, at| {
        Ok::<_, AppError>(TicketCommand::AddComment(AddComment {
            comment_id: CommentId(Uuid::now_v7()),
            body: text(CommentBody::parse, body)?,
            internal,
            automated: false,
            actor: actor(by),
            at,
        }))
    };
    let status = |to, by: &UserView, at| {
        TicketCommand::ChangeStatus(ChangeTicketStatus {
            to,
            comment: None,
            actor: actor(by),
            at,
        })
    };

    // Triage: most tickets get an owner and start being worked.
    if rng.gen_bool(0.15) {
        return Ok(());
    }
    let Some(t) = step(rng) else { return Ok(()) };
    let assign = TicketCommand::Assign(AssignTicket {
        assignee: standing(agent),
        reason: Some(text(Reason::parse, "Triage")?),
        actor: actor(&cast.admin),
        at: t,
    });
    run(app, id, assign, &cast.admin).await?;
    let Some(t) = step(rng) else { return Ok(()) };
    run(app, id, status(TicketStatus::InProgress, agent, t), agent).await?;
    let Some(t) = step(rng) else { return Ok(()) };
    let reply = AGENT_REPLIES[rng.gen_range(0..AGENT_REPLIES.len())];
    run(app, id, comment(reply, false, agent, t)?, agent).await?;
    if rng.gen_bool(0.5) {
        let Some(t) = step(rng) else { return Ok(()) };
        let note = INTERNAL_NOTES[rng.gen_range(0..INTERNAL_NOTES.len())];
        run(app, id, comment(note, true, agent, t)?, agent).await?;
    }
    if rng.gen_bool(0.6) {
        let Some(t) = step(rng) else { return Ok(()) };
        let answer = CUSTOMER_REPLIES[rng.gen_range(0..CUSTOMER_REPLIES.len())];
        run(app, id, comment(answer, false, customer, t)?, customer).await?;
    }
    if matches!(priority, Priority::Critical | Priority::High) && rng.gen_bool(0.4) {
        let Some(t) = step(rng) else { return Ok(()) };
        let others: Vec<&UserView> = cast.agents.iter().filter(|a| a.id != agent.id).collect();
        let target = others[rng.gen_range(0..others.len())];
        let escalate = TicketCommand::Escalate(EscalateTicket {
            reason: text(Reason::parse, "Not resolved within the expected time")?,
            escalate_to: Some(standing(target)),
            actor: actor(agent),
            at: t,
        });
        run(app, id, escalate, agent).await?;
    }
    match rng.gen_range(0..100) {
        0..=14 => {
            let Some(t) = step(rng) else { return Ok(()) };
            run(app, id, status(TicketStatus::Pending, agent, t), agent).await?;
        }
        15..=24 => {
            let Some(t) = step(rng) else { return Ok(()) };
            run(app, id, status(TicketStatus::OnHold, agent, t), agent).await?;
        }
        25..=69 => {
            let Some(t) = step(rng) else { return Ok(()) };
            run(app, id, status(TicketStatus::Resolved, agent, t), agent).await?;
            if rng.gen_bool(0.5) {
                let Some(t) = step(rng) else { return Ok(()) };
                run(app, id, status(TicketStatus::Closed, agent, t), agent).await?;
                if rng.gen_bool(0.1) {
                    let Some(t) = step(rng) else { return Ok(()) };
                    run(app, id, status(TicketStatus::Open, customer, t), customer).await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn print_credentials(port: u16) {
    let mut lines = vec![
        String::new(),
        "  Docket demo data is loaded. Sign in with:".to_string(),
        format!("    admin      {:<24} {}", ADMIN.0, ADMIN.1),
    ];
    for (email, _) in AGENTS {
        lines.push(format!("    agent      {email:<24} {PASSWORD}"));
    }
    for (email, _) in CUSTOMERS {
        lines.push(format!("    customer   {email:<24} {PASSWORD}"));
    }
    lines.push(format!("  Web app: http://127.0.0.1:{port}/"));
    lines.push(format!(
        "  API explorer: http://127.0.0.1:{port}/docs   spec: http://127.0.0.1:{port}/openapi.json"
    ));
    lines.push(String::new());
    // Printed, not logged: this is for the person who typed the command.
    println!("{}", lines.join("\n"));
}
