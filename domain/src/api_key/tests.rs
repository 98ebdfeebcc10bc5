//! Given/when/then tests of every API key command.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

fn given(events: Vec<ApiKeyEvent>) -> cqrs_es::test::AggregateTestExecutor<ApiKey> {
    TestFramework::<ApiKey>::with(()).given(events)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn key_id() -> ApiKeyId {
    ApiKeyId(Uuid::from_u128(40))
}
fn admin() -> Actor {
    Actor::new(UserId(Uuid::from_u128(1)), Role::Admin)
}
fn agent() -> Actor {
    Actor::new(UserId(Uuid::from_u128(2)), Role::Agent)
}
fn customer() -> Actor {
    Actor::new(UserId(Uuid::from_u128(3)), Role::Customer)
}
fn service(role: Role) -> KeyOwner {
    KeyOwner {
        user_id: UserId(Uuid::from_u128(9)),
        role,
        active: true,
        service: true,
    }
}
fn own(actor: Actor) -> KeyOwner {
    KeyOwner {
        user_id: actor.user_id,
        role: actor.role,
        active: true,
        service: false,
    }
}
fn name() -> KeyName {
    KeyName::parse("CI exporter").unwrap_or_else(|e| panic!("{e}"))
}

fn create(actor: Actor, owner: KeyOwner, role: Role) -> ApiKeyCommand {
    ApiKeyCommand::Create(CreateApiKey {
        key_id: key_id(),
        owner,
        name: name(),
        role,
        prefix: "a1b2c3d4".into(),
        expires_at: None,
        allowed_ips: vec![],
        actor,
        at: at(),
    })
}

fn created(actor: Actor, owner: KeyOwner, role: Role) -> ApiKeyEvent {
    ApiKeyEvent::ApiKeyCreated {
        key_id: key_id(),
        owner_id: owner.user_id,
        name: name(),
        role,
        prefix: "a1b2c3d4".into(),
        expires_at: None,
        allowed_ips: vec![],
        created_by: actor,
        occurred_at: at(),
    }
}

#[test]
fn staff_make_personal_keys_up_to_their_own_role() {
    given(vec![])
        .when(create(agent(), own(agent()), Role::Viewer))
        .then_expect_events(vec![created(agent(), own(agent()), Role::Viewer)]);
    given(vec![])
        .when(create(agent(), own(agent()), Role::Agent))
        .then_expect_events(vec![created(agent(), own(agent()), Role::Agent)]);
}

#[test]
fn a_personal_key_above_its_owners_role_is_refused() {
    given(vec![])
        .when(create(agent(), own(agent()), Role::Manager))
        .then_expect_error(ApiKeyError::RoleAboveOwner {
            role: Role::Manager,
            owner_role: Role::Agent,
        });
}

#[test]
fn customers_make_no_keys() {
    given(vec![])
        .when(create(customer(), own(customer()), Role::Customer))
        .then_expect_error(ApiKeyError::NotPermitted {
            role: Role::Customer,
            action: "make API keys",
        });
}

#[test]
fn an_admin_makes_keys_for_service_accounts() {
    given(vec![])
        .when(create(admin(), service(Role::Manager), Role::Manager))
        .then_expect_events(vec![created(
            admin(),
            service(Role::Manager),
            Role::Manager,
        )]);
}

#[test]
fn a_service_accounts_key_stays_within_the_accounts_role() {
    given(vec![])
        .when(create(admin(), service(Role::Viewer), Role::Admin))
        .then_expect_error(ApiKeyError::RoleAboveOwner {
            role: Role::Admin,
            owner_role: Role::Viewer,
        });
}

#[test]
fn only_admins_make_keys_for_others() {
    given(vec![])
        .when(create(agent(), service(Role::Agent), Role::Agent))
        .then_expect_error(ApiKeyError::NotPermitted {
            role: Role::Agent,
            action: "make keys for others",
        });
}

#[test]
fn keys_for_another_person_are_refused_even_to_admins() {
    given(vec![])
        .when(create(admin(), own(agent()), Role::Agent))
        .then_expect_error(ApiKeyError::OwnerNotService);
}

#[test]
fn a_deactivated_account_gets_no_new_keys() {
    let owner = KeyOwner {
        active: false,
        ..service(Role::Agent)
    };
    given(vec![])
        .when(create(admin(), owner, Role::Agent))
        .then_expect_error(ApiKeyError::OwnerInactive);
}

#[test]
fn a_key_cannot_act_as_a_customer_or_the_system() {
    for role in [Role::Customer, Role::System] {
        given(vec![])
            .when(create(admin(), own(admin()), role))
            .then_expect_error(ApiKeyError::RoleNotForKeys { role });
    }
}

#[test]
fn an_expiry_must_lie_ahead() {
    for expiry in [at(), at() - Duration::days(1)] {
        let ApiKeyCommand::Create(mut command) = create(agent(), own(agent()), Role::Agent) else {
            return;
        };
        command.expires_at = Some(expiry);
        given(vec![])
            .when(ApiKeyCommand::Create(command))
            .then_expect_error(ApiKeyError::ExpiryInPast);
    }
}

#[test]
fn a_key_is_made_once() {
    given(vec![created(agent(), own(agent()), Role::Agent)])
        .when(create(agent(), own(agent()), Role::Agent))
        .then_expect_error(ApiKeyError::AlreadyExists);
}

#[test]
fn the_first_use_is_recorded_once() {
    let first = ApiKeyEvent::ApiKeyFirstUsed {
        ip: Some("203.0.113.7".into()),
        occurred_at: at(),
    };
    let use_it = || ApiKeyCommand::RecordFirstUse {
        ip: Some("203.0.113.7".into()),
        at: at(),
    };
    given(vec![created(agent(), own(agent()), Role::Agent)])
        .when(use_it())
        .then_expect_events(vec![first.clone()]);
    given(vec![created(agent(), own(agent()), Role::Agent), first])
        .when(use_it())
        .then_expect_events(vec![]);
}

#[test]
fn the_owner_or_an_admin_revokes_a_key_once() {
    let revoked = |by: Actor| ApiKeyEvent::ApiKeyRevoked {
        revoked_by: by,
        occurred_at: at(),
    };
    for by in [agent(), admin()] {
        given(vec![created(agent(), own(agent()), Role::Agent)])
            .when(ApiKeyCommand::Revoke {
                actor: by,
                at: at(),
            })
            .then_expect_events(vec![revoked(by)]);
    }
    given(vec![
        created(agent(), own(agent()), Role::Agent),
        revoked(agent()),
    ])
    .when(ApiKeyCommand::Revoke {
        actor: agent(),
        at: at(),
    })
    .then_expect_error(ApiKeyError::AlreadyRevoked);
}

#[test]
fn someone_elses_key_is_not_theirs_to_revoke() {
    let other = Actor::new(UserId(Uuid::from_u128(77)), Role::Manager);
    given(vec![created(agent(), own(agent()), Role::Agent)])
        .when(ApiKeyCommand::Revoke {
            actor: other,
            at: at(),
        })
        .then_expect_error(ApiKeyError::NotPermitted {
            role: Role::Manager,
            action: "revoke others' keys",
        });
}

#[test]
fn nothing_happens_to_a_key_that_was_never_made() {
    given(vec![])
        .when(ApiKeyCommand::Revoke {
            actor: admin(),
            at: at(),
        })
        .then_expect_error(ApiKeyError::NotFound);
}

#[test]
fn the_state_follows_the_events() {
    let key = ApiKey::from_events([
        created(agent(), own(agent()), Role::Agent),
        ApiKeyEvent::ApiKeyRevoked {
            revoked_by: admin(),
            occurred_at: at() + Duration::hours(1),
        },
    ]);
    let state = key.state();
    assert_eq!(state.map(|s| s.role), Some(Role::Agent));
    assert_eq!(
        state.and_then(|s| s.revoked_at),
        Some(at() + Duration::hours(1))
    );
}
