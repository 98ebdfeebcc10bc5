//! E-mail: the kinds of mail Docket sends, which notification each carries, and the templates
//! administrators edit. A template is configuration, so every change is an event with its
//! version (DESIGN.md decision 6); whether its text is a valid template is the application's
//! to check (it takes a template engine).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::access::{self, Permission};
use crate::values::{Actor, NotificationKind, Role, ValidationError};

crate::values::wire_enum!(
    /// A kind of mail, with a template of its own.
    MailKind, "kind" {
        TicketCreated => "ticket_created",
        TicketAssigned => "ticket_assigned",
        PublicReply => "public_reply",
        StatusChanged => "status_changed",
        SlaWarning => "sla_warning",
        SlaBreached => "sla_breached",
        Escalated => "escalated",
        Report => "report",
    }
);

impl MailKind {
    /// The mail a notification of `kind` is sent as; `None` for those told only in the app
    /// (mentions, follows, rules, webhooks).
    pub fn for_notification(kind: NotificationKind) -> Option<MailKind> {
        match kind {
            NotificationKind::TicketCreated => Some(MailKind::TicketCreated),
            NotificationKind::Assigned => Some(MailKind::TicketAssigned),
            NotificationKind::CustomerReply | NotificationKind::PublicReply => {
                Some(MailKind::PublicReply)
            }
            NotificationKind::StatusChanged => Some(MailKind::StatusChanged),
            NotificationKind::SlaWarning => Some(MailKind::SlaWarning),
            NotificationKind::SlaBreached => Some(MailKind::SlaBreached),
            NotificationKind::Escalated => Some(MailKind::Escalated),
            NotificationKind::Mentioned
            | NotificationKind::Followed
            | NotificationKind::WebhookDisabled
            | NotificationKind::Rule => None,
        }
    }

    /// The aggregate id of this kind's template: one per kind, the same in every database.
    pub fn template_id(self) -> uuid::Uuid {
        uuid::Uuid::new_v5(
            &uuid::Uuid::from_u128(0x8f1d_2c9a_6b7e_4d30_9a15_e4c2_7b60_d318),
            self.as_str().as_bytes(),
        )
    }
}

/// A template's three parts, each at most [`Template::MAX_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Template {
    pub const MAX_CHARS: usize = 20_000;
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailTemplateCommand {
    Set {
        kind: MailKind,
        template: Template,
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// Back to the template Docket ships.
    Reset {
        kind: MailKind,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EmailTemplateEvent {
    EmailTemplateSet {
        kind: MailKind,
        template: Template,
        set_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    EmailTemplateReset {
        kind: MailKind,
        reset_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

crate::event_names!(EmailTemplateEvent {
    EmailTemplateSet,
    EmailTemplateReset,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailTemplateError {
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
    #[error("must be at most {max} characters (got {got})")]
    TooLong {
        part: &'static str,
        max: usize,
        got: usize,
    },
    #[error("must not be empty")]
    EmptySubject,
}

/// A kind's template as its events leave it: `None` while Docket's own is in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailTemplate {
    pub custom: Option<Template>,
}

impl EmailTemplate {
    pub fn decide(
        &self,
        command: &EmailTemplateCommand,
    ) -> Result<Vec<EmailTemplateEvent>, EmailTemplateError> {
        let actor = match command {
            EmailTemplateCommand::Set { actor, .. } | EmailTemplateCommand::Reset { actor, .. } => {
                actor
            }
        };
        access::require_actor(
            actor,
            Permission::ManageIntegrations,
            "edit e-mail templates",
        )
        .map_err(|refusal| EmailTemplateError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        })?;
        match command {
            EmailTemplateCommand::Set {
                kind,
                template,
                actor,
                at,
            } => {
                for (part, text) in [
                    ("subject", &template.subject),
                    ("text", &template.text),
                    ("html", &template.html),
                ] {
                    let got = text.chars().count();
                    if got > Template::MAX_CHARS {
                        return Err(EmailTemplateError::TooLong {
                            part,
                            max: Template::MAX_CHARS,
                            got,
                        });
                    }
                }
                if template.subject.trim().is_empty() {
                    return Err(EmailTemplateError::EmptySubject);
                }
                if self.custom.as_ref() == Some(template) {
                    return Ok(vec![]);
                }
                Ok(vec![EmailTemplateEvent::EmailTemplateSet {
                    kind: *kind,
                    template: template.clone(),
                    set_by: *actor,
                    occurred_at: *at,
                }])
            }
            EmailTemplateCommand::Reset { kind, actor, at } => {
                if self.custom.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![EmailTemplateEvent::EmailTemplateReset {
                    kind: *kind,
                    reset_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for EmailTemplate {
    const TYPE: &'static str = "email_template";
    type Command = EmailTemplateCommand;
    type Event = EmailTemplateEvent;
    type Error = EmailTemplateError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            EmailTemplateEvent::EmailTemplateSet { template, .. } => self.custom = Some(template),
            EmailTemplateEvent::EmailTemplateReset { .. } => self.custom = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::values::UserId;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }
    fn admin() -> Actor {
        Actor::new(UserId(Uuid::from_u128(1)), Role::Admin)
    }
    fn template(subject: &str) -> Template {
        Template {
            subject: subject.to_string(),
            text: "Hello {{ recipient.name }}".to_string(),
            html: "<p>Hello {{ recipient.name }}</p>".to_string(),
        }
    }
    fn set(subject: &str, actor: Actor) -> EmailTemplateCommand {
        EmailTemplateCommand::Set {
            kind: MailKind::PublicReply,
            template: template(subject),
            actor,
            at: at(),
        }
    }
    fn was_set(subject: &str) -> EmailTemplateEvent {
        EmailTemplateEvent::EmailTemplateSet {
            kind: MailKind::PublicReply,
            template: template(subject),
            set_by: admin(),
            occurred_at: at(),
        }
    }

    #[test]
    fn an_admin_sets_a_template_and_the_same_again_is_nothing() {
        TestFramework::<EmailTemplate>::with(())
            .given_no_previous_events()
            .when(set("Re: {{ ticket.number }}", admin()))
            .then_expect_events(vec![was_set("Re: {{ ticket.number }}")]);
        TestFramework::<EmailTemplate>::with(())
            .given(vec![was_set("Re: {{ ticket.number }}")])
            .when(set("Re: {{ ticket.number }}", admin()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_admins_edit_templates_and_a_subject_is_required() {
        let manager = Actor::new(UserId(Uuid::from_u128(2)), Role::Manager);
        TestFramework::<EmailTemplate>::with(())
            .given_no_previous_events()
            .when(set("x", manager))
            .then_expect_error(EmailTemplateError::NotPermitted {
                role: Role::Manager,
                action: "edit e-mail templates",
            });
        TestFramework::<EmailTemplate>::with(())
            .given_no_previous_events()
            .when(set("  ", admin()))
            .then_expect_error(EmailTemplateError::EmptySubject);
    }

    #[test]
    fn a_reset_brings_back_the_shipped_template_once() {
        let reset = || EmailTemplateCommand::Reset {
            kind: MailKind::PublicReply,
            actor: admin(),
            at: at(),
        };
        TestFramework::<EmailTemplate>::with(())
            .given(vec![was_set("x")])
            .when(reset())
            .then_expect_events(vec![EmailTemplateEvent::EmailTemplateReset {
                kind: MailKind::PublicReply,
                reset_by: admin(),
                occurred_at: at(),
            }]);
        TestFramework::<EmailTemplate>::with(())
            .given_no_previous_events()
            .when(reset())
            .then_expect_events(vec![]);
    }

    #[test]
    fn every_notification_sent_by_mail_has_a_kind_and_each_kind_its_own_template() {
        assert_eq!(
            MailKind::for_notification(NotificationKind::CustomerReply),
            Some(MailKind::PublicReply)
        );
        assert_eq!(MailKind::for_notification(NotificationKind::Followed), None);
        let ids: std::collections::HashSet<Uuid> =
            MailKind::ALL.iter().map(|k| k.template_id()).collect();
        assert_eq!(ids.len(), MailKind::ALL.len());
    }
}
