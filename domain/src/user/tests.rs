//! Given/when/then tests of every user command.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::{Actor, Email, FullName, Role, UserId};

fn given(events: Vec<UserEvent>) -> cqrs_es::test::AggregateTestExecutor<User> {
    TestFramework::<User>::with(()).given(events)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn user_id() -> UserId {
    UserId(Uuid::from_u128(7))
}
fn admin() -> Actor {
    Actor::new(UserId(Uuid::from_u128(1)), Role::Admin)
}
fn manager() -> Actor {
    Actor::new(UserId(Uuid::from_u128(2)), Role::Manager)
}
fn email(text: &str) -> Email {
    Email::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn name(text: &str) -> FullName {
    FullName::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn register(role: Role, registration: Registration) -> UserCommand {
    UserCommand::Register(RegisterUser {
        user_id: user_id(),
        email: email("ann@example.com"),
        full_name: name("Ann Archer"),
        role,
        registration,
        service: false,
        at: at(),
    })
}

fn registered(role: Role, registration: Registration) -> UserEvent {
    UserEvent::UserRegistered {
        user_id: user_id(),
        email: email("ann@example.com"),
        full_name: name("Ann Archer"),
        role,
        registration,
        service: false,
        occurred_at: at(),
    }
}

fn an_agent() -> Vec<UserEvent> {
    vec![registered(Role::Agent, Registration::ByAdmin(admin()))]
}

#[test]
fn anyone_may_sign_up_as_a_customer() {
    given(vec![])
        .when(register(Role::Customer, Registration::SelfService))
        .then_expect_events(vec![registered(Role::Customer, Registration::SelfService)]);
}

#[test]
fn self_registration_cannot_choose_a_staff_role() {
    given(vec![])
        .when(register(Role::Admin, Registration::SelfService))
        .then_expect_error(UserError::SelfRegistrationIsForCustomers);
}

#[test]
fn an_admin_creates_staff_accounts() {
    given(vec![])
        .when(register(Role::Agent, Registration::ByAdmin(admin())))
        .then_expect_events(an_agent());
}

#[test]
fn a_manager_cannot_create_accounts() {
    given(vec![])
        .when(register(Role::Agent, Registration::ByAdmin(manager())))
        .then_expect_error(UserError::NotPermitted {
            role: Role::Manager,
            action: "create accounts",
        });
}

#[test]
fn the_server_bootstraps_the_first_admin() {
    given(vec![])
        .when(register(Role::Admin, Registration::Bootstrap))
        .then_expect_events(vec![registered(Role::Admin, Registration::Bootstrap)]);
}

#[test]
fn registering_twice_is_refused() {
    given(an_agent())
        .when(register(Role::Agent, Registration::ByAdmin(admin())))
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn commands_on_an_unknown_user_are_refused() {
    given(vec![])
        .when(UserCommand::RecordPasswordChange {
            actor: admin(),
            at: at(),
        })
        .then_expect_error(UserError::NotFound);
}

#[test]
fn an_admin_updates_a_profile_recording_only_what_changed() {
    given(an_agent())
        .when(UserCommand::UpdateProfile(UpdateUserProfile {
            full_name: Some(name("Ann Archer")),
            email: Some(email("ann.archer@example.com")),
            actor: admin(),
            at: at(),
        }))
        .then_expect_events(vec![UserEvent::UserProfileUpdated {
            full_name: None,
            email: Some(email("ann.archer@example.com")),
            updated_by: admin(),
            occurred_at: at(),
        }]);
}

#[test]
fn only_admins_edit_profiles() {
    given(an_agent())
        .when(UserCommand::UpdateProfile(UpdateUserProfile {
            full_name: Some(name("Someone Else")),
            email: None,
            actor: manager(),
            at: at(),
        }))
        .then_expect_error(UserError::NotPermitted {
            role: Role::Manager,
            action: "edit other accounts",
        });
}

#[test]
fn an_admin_changes_a_role_but_not_their_own() {
    given(an_agent())
        .when(UserCommand::ChangeRole(ChangeUserRole {
            role: Role::Manager,
            actor: admin(),
            at: at(),
        }))
        .then_expect_events(vec![UserEvent::UserRoleChanged {
            from: Role::Agent,
            to: Role::Manager,
            changed_by: admin(),
            occurred_at: at(),
        }]);
    let own = vec![UserEvent::UserRegistered {
        user_id: admin().user_id,
        email: email("root@example.com"),
        full_name: name("Root"),
        role: Role::Admin,
        registration: Registration::Bootstrap,
        service: false,
        occurred_at: at(),
    }];
    given(own)
        .when(UserCommand::ChangeRole(ChangeUserRole {
            role: Role::Agent,
            actor: admin(),
            at: at(),
        }))
        .then_expect_error(UserError::OwnAccount {
            action: "change the role of",
        });
}

#[test]
fn an_admin_deactivates_and_reactivates_an_account() {
    let deactivate = |active| {
        UserCommand::SetActive(SetUserActive {
            active,
            actor: admin(),
            at: at(),
        })
    };
    let deactivated = UserEvent::UserDeactivated {
        deactivated_by: admin(),
        occurred_at: at(),
    };
    given(an_agent())
        .when(deactivate(false))
        .then_expect_events(vec![deactivated.clone()]);
    given(an_agent())
        .and(vec![deactivated.clone()])
        .when(deactivate(false))
        .then_expect_error(UserError::AlreadyInState {
            state: "deactivated",
        });
    given(an_agent())
        .and(vec![deactivated])
        .when(deactivate(true))
        .then_expect_events(vec![UserEvent::UserReactivated {
            reactivated_by: admin(),
            occurred_at: at(),
        }]);
    given(an_agent())
        .when(deactivate(true))
        .then_expect_error(UserError::AlreadyInState { state: "active" });
}

#[test]
fn a_manager_cannot_deactivate_anyone() {
    given(an_agent())
        .when(UserCommand::SetActive(SetUserActive {
            active: false,
            actor: manager(),
            at: at(),
        }))
        .then_expect_error(UserError::NotPermitted {
            role: Role::Manager,
            action: "activate or deactivate accounts",
        });
}

#[test]
fn a_person_records_their_own_password_change_and_an_admin_anyone_s() {
    let me = Actor::new(user_id(), Role::Agent);
    given(an_agent())
        .when(UserCommand::RecordPasswordChange {
            actor: me,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserPasswordChanged {
            changed_by: me,
            occurred_at: at(),
        }]);
    given(an_agent())
        .when(UserCommand::RecordPasswordChange {
            actor: manager(),
            at: at(),
        })
        .then_expect_error(UserError::NotPermitted {
            role: Role::Manager,
            action: "change another person's password",
        });
}

#[test]
fn a_deactivated_account_replays_as_inactive() {
    let user = User::from_events(vec![
        registered(Role::Agent, Registration::ByAdmin(admin())),
        UserEvent::UserDeactivated {
            deactivated_by: admin(),
            occurred_at: at(),
        },
    ]);
    assert_eq!(user.state().map(|u| u.active), Some(false));
    assert_eq!(user.state().map(|u| u.role), Some(Role::Agent));
}

fn register_service(role: Role, registration: Registration) -> UserCommand {
    let UserCommand::Register(register) = register(role, registration) else {
        unreachable!("register builds a registration")
    };
    UserCommand::Register(RegisterUser {
        service: true,
        ..register
    })
}

fn a_service_account() -> Vec<UserEvent> {
    let UserEvent::UserRegistered {
        user_id,
        email,
        full_name,
        role,
        registration,
        occurred_at,
        ..
    } = registered(Role::Agent, Registration::ByAdmin(admin()))
    else {
        unreachable!("registered builds a registration")
    };
    vec![UserEvent::UserRegistered {
        user_id,
        email,
        full_name,
        role,
        registration,
        service: true,
        occurred_at,
    }]
}

#[test]
fn an_admin_makes_a_service_account_with_a_staff_role() {
    given(vec![])
        .when(register_service(
            Role::Agent,
            Registration::ByAdmin(admin()),
        ))
        .then_expect_events(a_service_account());
}

#[test]
fn a_service_account_is_never_a_customer() {
    given(vec![])
        .when(register_service(
            Role::Customer,
            Registration::ByAdmin(admin()),
        ))
        .then_expect_error(UserError::ServiceRole {
            role: Role::Customer,
        });
}

#[test]
fn nobody_signs_up_as_a_service() {
    given(vec![])
        .when(register_service(Role::Customer, Registration::SelfService))
        .then_expect_error(UserError::ServiceNeedsAdmin);
    given(vec![])
        .when(register_service(Role::Admin, Registration::Bootstrap))
        .then_expect_error(UserError::ServiceNeedsAdmin);
}

#[test]
fn a_service_account_has_no_password_to_change() {
    given(a_service_account())
        .when(UserCommand::RecordPasswordChange {
            actor: admin(),
            at: at(),
        })
        .then_expect_error(UserError::ServiceHasNoPassword);
}

#[test]
fn an_event_recorded_before_service_accounts_reads_as_a_person() {
    let stored = r#"{"UserRegistered":{"user_id":"00000000-0000-0000-0000-000000000007",
        "email":"ann@example.com","full_name":"Ann Archer","role":"agent",
        "registration":"self_service","occurred_at":"2026-11-20T09:00:00Z"}}"#;
    let event: UserEvent = serde_json::from_str(stored).unwrap_or_else(|e| panic!("{e}"));
    let user = User::from_events([event.clone()]);
    assert_eq!(user.state().map(|u| u.service), Some(false));
    // And a person's registration is written as it always was, without the flag.
    let written = serde_json::to_string(&event).unwrap_or_default();
    assert!(!written.contains("\"service\""), "{written}");
}

#[test]
fn a_person_sets_their_own_notifications_and_the_same_again_is_nothing() {
    use crate::notice::NotificationPreferences;
    use crate::values::NotificationKind;
    let own = Actor::new(user_id(), Role::Agent);
    let quiet = NotificationPreferences::new(&[NotificationKind::Followed], &[]);
    let set = |actor| UserCommand::SetNotificationPreferences {
        preferences: quiet.clone(),
        actor,
        at: at(),
    };
    let recorded = UserEvent::NotificationPreferencesSet {
        preferences: quiet.clone(),
        set_by: own,
        occurred_at: at(),
    };
    given(an_agent())
        .when(set(own))
        .then_expect_events(vec![recorded.clone()]);
    let mut history = an_agent();
    history.push(recorded);
    given(history).when(set(own)).then_expect_events(vec![]);
    given(an_agent())
        .when(set(manager()))
        .then_expect_error(UserError::NotPermitted {
            role: Role::Manager,
            action: "set another person's notifications",
        });
}
