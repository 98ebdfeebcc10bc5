//! Given/when/then tests of every webhook command, and of what an endpoint receives.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::{Role, UserId};

fn given(events: Vec<WebhookEvent>) -> cqrs_es::test::AggregateTestExecutor<Webhook> {
    TestFramework::<Webhook>::with(()).given(events)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
        .single()
        .unwrap_or_default()
}
fn id() -> WebhookId {
    WebhookId(Uuid::from_u128(60))
}
fn admin() -> Actor {
    Actor::new(UserId(Uuid::from_u128(1)), Role::Admin)
}
fn manager() -> Actor {
    Actor::new(UserId(Uuid::from_u128(2)), Role::Manager)
}
fn url(text: &str) -> WebhookUrl {
    WebhookUrl::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn subscriptions(kinds: &[EventKind]) -> Subscriptions {
    Subscriptions::new(kinds).unwrap_or_else(|e| panic!("{e}"))
}
fn settings() -> WebhookSettings {
    WebhookSettings {
        url: url("https://hooks.example.com/docket"),
        events: subscriptions(&[EventKind::TicketCreated, EventKind::CommentAdded]),
        description: None,
        enabled: true,
        include_internal: false,
    }
}
fn created() -> WebhookEvent {
    let settings = settings();
    WebhookEvent::WebhookCreated {
        webhook_id: id(),
        url: settings.url,
        events: settings.events,
        description: None,
        enabled: true,
        include_internal: false,
        created_by: admin(),
        occurred_at: at(),
    }
}
fn update(change: WebhookChange) -> WebhookCommand {
    WebhookCommand::Update {
        change,
        actor: admin(),
        at: at(),
    }
}
fn updated(enabled: Option<bool>) -> WebhookEvent {
    WebhookEvent::WebhookUpdated {
        url: None,
        events: None,
        description: None,
        enabled,
        include_internal: None,
        updated_by: admin(),
        occurred_at: at(),
    }
}
fn disabled() -> WebhookEvent {
    WebhookEvent::WebhookDisabled {
        reason: DisableReason::Gone,
        occurred_at: at(),
    }
}

#[test]
fn an_admin_adds_an_endpoint() {
    given(vec![])
        .when(WebhookCommand::Create {
            webhook_id: id(),
            settings: settings(),
            actor: admin(),
            at: at(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn only_admins_configure_webhooks() {
    given(vec![])
        .when(WebhookCommand::Create {
            webhook_id: id(),
            settings: settings(),
            actor: manager(),
            at: at(),
        })
        .then_expect_error(WebhookError::NotPermitted {
            role: Role::Manager,
            action: "configure webhooks",
        });
    given(vec![created()])
        .when(WebhookCommand::RotateSecret {
            actor: manager(),
            at: at(),
        })
        .then_expect_error(WebhookError::NotPermitted {
            role: Role::Manager,
            action: "rotate webhook secrets",
        });
}

#[test]
fn an_update_records_only_what_changed() {
    let change = WebhookChange {
        url: Some(url("https://hooks.example.com/docket")),
        enabled: Some(false),
        ..WebhookChange::default()
    };
    given(vec![created()])
        .when(update(change))
        .then_expect_events(vec![updated(Some(false))]);
    given(vec![created()])
        .when(update(WebhookChange {
            enabled: Some(true),
            ..WebhookChange::default()
        }))
        .then_expect_events(vec![]);
}

#[test]
fn a_410_disables_an_endpoint_once() {
    given(vec![created()])
        .when(WebhookCommand::Disable {
            reason: DisableReason::Gone,
            at: at(),
        })
        .then_expect_events(vec![disabled()]);
    given(vec![created(), disabled()])
        .when(WebhookCommand::Disable {
            reason: DisableReason::Failing {
                since: at() - Duration::days(5),
            },
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn enabling_an_endpoint_docket_disabled_brings_it_back() {
    let back = Webhook::from_events([created(), disabled()]);
    assert!(!back.receives());
    given(vec![created(), disabled()])
        .when(update(WebhookChange {
            enabled: Some(true),
            ..WebhookChange::default()
        }))
        .then_expect_events(vec![updated(Some(true))]);
    let back = Webhook::from_events([created(), disabled(), updated(Some(true))]);
    assert!(back.receives());
}

#[test]
fn a_rotation_says_who_and_when_only() {
    given(vec![created()])
        .when(WebhookCommand::RotateSecret {
            actor: admin(),
            at: at(),
        })
        .then_expect_events(vec![WebhookEvent::WebhookSecretRotated {
            rotated_by: admin(),
            occurred_at: at(),
        }]);
}

#[test]
fn a_deleted_endpoint_is_gone() {
    let deleted = WebhookEvent::WebhookDeleted {
        deleted_by: admin(),
        occurred_at: at(),
    };
    given(vec![created()])
        .when(WebhookCommand::Delete {
            actor: admin(),
            at: at(),
        })
        .then_expect_events(vec![deleted.clone()]);
    given(vec![created(), deleted.clone()])
        .when(update(WebhookChange {
            enabled: Some(false),
            ..WebhookChange::default()
        }))
        .then_expect_error(WebhookError::NotFound);
    assert!(!Webhook::from_events([created(), deleted]).receives());
}

#[test]
fn urls_are_http_addresses_with_a_host() {
    for good in [
        "https://hooks.example.com/docket?x=1",
        "http://127.0.0.1:9000/in",
        "https://[2001:db8::1]:8443/",
    ] {
        assert!(WebhookUrl::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "ftp://example.com/",
        "https://",
        "https://user:secret@example.com/",
        "https://exa mple.com/",
        "example.com/hook",
    ] {
        assert_eq!(
            WebhookUrl::parse(bad).err().map(|e| e.field),
            Some("url".to_string()),
            "{bad}"
        );
    }
}

#[test]
fn an_endpoint_receives_at_least_one_kind_each_once() {
    assert!(Subscriptions::new(&[]).is_err());
    let twice = subscriptions(&[EventKind::SlaBreached, EventKind::SlaBreached]);
    assert_eq!(twice.kinds(), &[EventKind::SlaBreached]);
}

#[test]
fn a_disable_reason_reads_back_as_stored() {
    let stored = serde_json::to_value(disabled()).unwrap_or_default();
    assert_eq!(stored["WebhookDisabled"]["reason"], "gone");
    let failing = WebhookEvent::WebhookDisabled {
        reason: DisableReason::Failing { since: at() },
        occurred_at: at(),
    };
    let text = serde_json::to_string(&failing).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<WebhookEvent>(&text).ok(),
        Some(failing)
    );
}
