//! The values aggregates are made of. Each has a fallible constructor, so a value that exists is a
//! valid one; the HTTP layer builds them at the edge and never passes raw strings inward.
//!
//! Deserialisation is deliberately *not* validating: these values are also read back from the
//! event log, and an event recorded under yesterday's rules must still load under today's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value that does not satisfy its rules, and the input field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Identifies a person with an account: staff or customer.
    UserId
);
id_type!(
    /// Identifies a skill in the catalogue.
    SkillId
);
id_type!(
    /// Identifies a support team.
    TeamId
);
id_type!(
    /// Identifies one shift of one agent.
    ShiftId
);
id_type!(
    /// Identifies a ticket. Also its aggregate id in the event log.
    TicketId
);
id_type!(
    /// Identifies one comment on a ticket.
    CommentId
);
id_type!(
    /// Identifies an API key. Also its aggregate id in the event log.
    ApiKeyId
);

/// The human-facing ticket number, `TKT-000042`, drawn from a database sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketNumber(pub i64);

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TKT-{:06}", self.0)
    }
}

impl TicketNumber {
    /// A number as people write it: `TKT-000051`, `tkt-51`, `#51` or `51`. `None` for
    /// anything else (a zero, a negative, a word).
    pub fn recognise(text: &str) -> Option<Self> {
        let text = text.trim();
        let digits = match text.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("TKT-") => &text[4..],
            _ => text.strip_prefix('#').unwrap_or(text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|n| *n > 0).map(TicketNumber)
    }
}

/// Spelled-out enums share one shape: exact lower-case strings on the wire and in the log.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(ValidationError::new(
                        $what,
                        format!(
                            "`{other}` is not one of {}",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        /// For read models that store the wire text (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = ValidationError;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// How urgent a ticket is.
    Priority, "priority" {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
);

impl Priority {
    /// Larger is more urgent; used for sorting queues and lists.
    pub fn urgency(self) -> i16 {
        match self {
            Priority::Critical => 4,
            Priority::High => 3,
            Priority::Medium => 2,
            Priority::Low => 1,
        }
    }
}

wire_enum!(
    /// Where a ticket is in its life.
    TicketStatus, "status" {
        New => "new",
        Open => "open",
        InProgress => "in_progress",
        Pending => "pending",
        OnHold => "on_hold",
        Resolved => "resolved",
        Closed => "closed",
    }
);

impl TicketStatus {
    /// Whether work on the ticket has finished (it may still be reopened).
    pub fn is_finished(self) -> bool {
        matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }

    /// Every status in which work goes on.
    pub fn unfinished() -> impl Iterator<Item = TicketStatus> {
        Self::ALL.iter().copied().filter(|s| !s.is_finished())
    }
}

wire_enum!(
    /// What a person may do. Staff are everyone but customers. `system` is the server itself
    /// (deadline scheduler, rules): it acts, but no account can have it.
    Role, "role" {
        Admin => "admin",
        Manager => "manager",
        Agent => "agent",
        Customer => "customer",
        Viewer => "viewer",
        System => "system",
    }
);

impl Role {
    /// Sees every ticket, including internal comments. Viewers are read-only staff.
    pub fn is_staff(self) -> bool {
        self.may(crate::access::Permission::ReadStaffViews)
    }

    /// A role a person's account may have.
    pub fn is_assignable_to_accounts(self) -> bool {
        !matches!(self, Role::System)
    }

    /// Works tickets: agents, managers and admins ("agent+").
    pub fn works_tickets(self) -> bool {
        self.may(crate::access::Permission::WorkTickets)
    }

    /// May be the assignee of a ticket.
    pub fn can_be_assigned(self) -> bool {
        matches!(self, Role::Agent | Role::Manager)
    }
}

/// Who is acting: every command carries one, every event records one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

impl Actor {
    pub fn new(user_id: UserId, role: Role) -> Self {
        Self { user_id, role }
    }

    /// The server acting on its own: deadlines, rules.
    pub fn system() -> Self {
        Self {
            user_id: UserId(Uuid::nil()),
            role: Role::System,
        }
    }
}

/// Trimmed text with a length range in characters (not bytes: people count characters).
fn bounded_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, ValidationError> {
    let text = raw.trim();
    let length = text.chars().count();
    if length < min {
        return Err(ValidationError::new(
            field,
            if min == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if length > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters (got {length})"),
        ));
    }
    if text.chars().any(|c| c == '\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(text.to_string())
}

macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            /// Validates `raw`, reporting errors against the input field `field`.
            pub fn parse_field(field: &str, raw: &str) -> Result<Self, ValidationError> {
                bounded_text(field, raw, $min, $max).map(Self)
            }

            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                Self::parse_field($field, raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(
    /// A ticket's one-line summary.
    Subject, "subject", 1, 200
);
text_type!(
    /// A ticket's full description of the problem.
    Description, "description", 1, 50_000
);
text_type!(
    /// The text of a comment.
    CommentBody, "body", 1, 50_000
);
text_type!(
    /// A free-form ticket category such as `billing`.
    Category, "category", 1, 100
);
text_type!(
    /// One label on a ticket.
    Tag, "tags", 1, 50
);
text_type!(
    /// Why someone assigned, escalated or changed a ticket.
    Reason, "reason", 1, 2_000
);
text_type!(
    /// A person's display name.
    FullName, "full_name", 1, 200
);
text_type!(
    /// The name of a skill in the catalogue, such as `Billing`.
    SkillName, "name", 1, 100
);
text_type!(
    /// The name of a support team.
    TeamName, "name", 1, 100
);
text_type!(
    /// What an API key is for, as its owner named it (`CI exporter`).
    KeyName, "name", 1, 100
);
text_type!(
    /// A short free-form note (a team's description, a break's reason).
    Note, "note", 1, 500
);

wire_enum!(
    /// Whether an agent is taking work. Only `available` agents are routed to.
    AgentStatus, "status" {
        Available => "available",
        Busy => "busy",
        Away => "away",
        Offline => "offline",
    }
);

wire_enum!(
    /// A person's place in a team.
    TeamRole, "team_role" {
        Member => "member",
        Lead => "lead",
        Manager => "manager",
    }
);

wire_enum!(
    /// What happened to a ticket, as integrations (webhooks) and automation rules name it. One
    /// event of the log may be several of these: a priority change is also an update, a status
    /// change to resolved is also `ticket.resolved`.
    EventKind, "events" {
        TicketCreated => "ticket.created",
        TicketUpdated => "ticket.updated",
        TicketStatusChanged => "ticket.status_changed",
        TicketPriorityChanged => "ticket.priority_changed",
        TicketAssigned => "ticket.assigned",
        TicketEscalated => "ticket.escalated",
        TicketResolved => "ticket.resolved",
        CommentAdded => "comment.added",
        SlaWarning => "sla.warning",
        SlaBreached => "sla.breached",
    }
);

wire_enum!(
    /// Why someone is told of something (each is switched on or off per channel by its
    /// recipient).
    NotificationKind, "kind" {
        TicketCreated => "ticket_created",
        Assigned => "assigned",
        CustomerReply => "customer_reply",
        PublicReply => "public_reply",
        StatusChanged => "status_changed",
        SlaWarning => "sla_warning",
        SlaBreached => "sla_breached",
        Escalated => "escalated",
        Mentioned => "mentioned",
        Followed => "followed",
        WebhookDisabled => "webhook_disabled",
        Rule => "rule",
    }
);

/// The labels on a ticket: at most [`Tags::MAX`], each unique, kept in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub const MAX: usize = 20;

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.len() > Self::MAX {
            return Err(ValidationError::new(
                "tags",
                format!("at most {} tags (got {})", Self::MAX, raw.len()),
            ));
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(raw.len());
        for (index, text) in raw.iter().enumerate() {
            let tag = Tag::parse_field(&format!("tags[{index}]"), text.as_ref())?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(Self(tags))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.as_str().to_string()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An e-mail address, stored lower-cased so that `Ann@Example.com` and `ann@example.com` are one
/// account. The check is deliberately modest: the only real proof is a delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let text = raw.trim().to_lowercase();
        let invalid = |reason: &str| Err(ValidationError::new("email", reason));
        if text.is_empty() {
            return invalid("must not be empty");
        }
        if text.chars().count() > 254 {
            return invalid("must be at most 254 characters");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("must not contain spaces");
        }
        let Some((local, domain)) = text.split_once('@') else {
            return invalid("must contain @");
        };
        if local.is_empty() || domain.contains('@') {
            return invalid("must have exactly one @ with a name before it");
        }
        if !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return invalid("must end in a domain such as example.com");
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip_for_every_enum_value() {
        for priority in Priority::ALL {
            assert_eq!(priority.as_str().parse::<Priority>(), Ok(*priority));
            assert_eq!(
                serde_json::to_value(priority).ok(),
                Some(serde_json::json!(priority.as_str()))
            );
        }
        for status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>(), Ok(*status));
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
    }

    #[test]
    fn an_unknown_enum_string_names_the_field_and_the_choices() {
        let error = "urgent".parse::<Priority>().err();
        assert_eq!(
            error,
            Some(ValidationError::new(
                "priority",
                "`urgent` is not one of critical, high, medium, low"
            ))
        );
    }

    #[test]
    fn a_subject_is_trimmed_and_bounded_by_characters_not_bytes() {
        assert_eq!(
            Subject::parse("  Printer on fire  ").map(|s| s.into_string()),
            Ok("Printer on fire".to_string())
        );
        assert!(Subject::parse("   ").is_err());
        assert!(Subject::parse(&"é".repeat(200)).is_ok());
        let too_long = Subject::parse(&"x".repeat(201));
        assert_eq!(too_long.err().map(|e| e.field), Some("subject".to_string()));
    }

    #[test]
    fn tags_are_deduplicated_limited_and_report_the_offending_index() {
        let tags = Tags::parse(&["vpn", "vpn", "billing"]).map(|t| t.to_strings());
        assert_eq!(tags, Ok(vec!["vpn".to_string(), "billing".to_string()]));
        let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&too_many).is_err());
        let bad = Tags::parse(&["ok", ""]).err().map(|e| e.field);
        assert_eq!(bad, Some("tags[1]".to_string()));
    }

    #[test]
    fn emails_are_lower_cased_and_checked_for_shape() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").map(|e| e.as_str().to_string()),
            Ok("ann@example.com".to_string())
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@@example.com",
            "a@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn ticket_numbers_are_zero_padded() {
        assert_eq!(TicketNumber(42).to_string(), "TKT-000042");
        assert_eq!(TicketNumber(1_234_567).to_string(), "TKT-1234567");
    }

    #[test]
    fn a_ticket_number_is_recognised_as_people_write_it() {
        for written in ["TKT-000051", "tkt-51", "#51", "51", " 51 "] {
            assert_eq!(
                TicketNumber::recognise(written),
                Some(TicketNumber(51)),
                "{written}"
            );
        }
        for other in ["", "TKT-", "0", "-5", "51a", "vpn", "TKT-x1", "#"] {
            assert_eq!(TicketNumber::recognise(other), None, "{other}");
        }
    }

    #[test]
    fn roles_group_into_staff_and_ticket_workers() {
        assert!(Role::Viewer.is_staff() && !Role::Viewer.works_tickets());
        assert!(!Role::Customer.is_staff());
        assert!(Role::Agent.works_tickets() && Role::Agent.can_be_assigned());
        assert!(Role::Admin.works_tickets() && !Role::Admin.can_be_assigned());
    }
}
