//! Wire enums shared by several resources. They mirror the domain's enums (which know nothing
//! of OpenAPI) and convert both ways with exhaustive matches, so the two cannot drift apart.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use docket_domain::sla::{ClockState, SlaMetric};
use docket_domain::values::{AgentStatus, TeamRole};
use docket_domain::{Priority, Role, TicketStatus};
use poem_openapi::Enum;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde::{Deserialize, Serialize};

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $dto:ident <=> $domain:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
        #[oai(rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $dto {
            $($variant),+
        }

        impl From<$domain> for $dto {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => $dto::$variant),+
                }
            }
        }

        impl From<$dto> for $domain {
            fn from(value: $dto) -> Self {
                match value {
                    $($dto::$variant => $domain::$variant),+
                }
            }
        }
    };
}

mirror_enum!(
    /// How urgent a ticket is.
    PriorityDto <=> Priority { Critical, High, Medium, Low }
);

mirror_enum!(
    /// Where a ticket is in its life. `new` is only the first status; `closed` can only be
    /// reopened (to `open`); `resolved` can be reopened or closed.
    StatusDto <=> TicketStatus { New, Open, InProgress, Pending, OnHold, Resolved, Closed }
);

mirror_enum!(
    /// What a person may do. `viewer` is read-only staff. `system` is the server itself
    /// (deadline scheduler, rules); it appears as an actor, and no account can have it.
    RoleDto <=> Role { Admin, Manager, Agent, Customer, Viewer, System }
);

mirror_enum!(
    /// Whether an agent takes work now. Only `available` agents are routed to.
    AgentStatusDto <=> AgentStatus { Available, Busy, Away, Offline }
);

mirror_enum!(
    /// A person's place in a team.
    TeamRoleDto <=> TeamRole { Member, Lead, Manager }
);

mirror_enum!(
    /// What an SLA clock shows: `running`, `paused` (in a pause status), `at_risk` (past the
    /// policy's warning threshold), `breached` (past its target) or `met`.
    ClockStateDto <=> ClockState { Running, Paused, AtRisk, Breached, Met }
);

mirror_enum!(
    /// What an SLA clock measures.
    SlaMetricDto <=> SlaMetric { FirstResponse, NextResponse, Resolution, Escalation }
);

/// An instant as every response shows it: RFC 3339 in UTC with microseconds and `Z`, such as
/// `2026-12-01T09:30:00.000000Z`. PostgreSQL keeps microseconds and the server's clock gives
/// them (`app::time`), so an instant reads back exactly as its write answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Timestamp(at)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.to_string()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        DateTime::<Utc>::parse_from_json(value)
            .map(Timestamp)
            .map_err(ParseError::propagate)
    }
}

/// The first page, when none is asked for.
pub fn default_page() -> i64 {
    1
}

/// Items per page, when not asked for.
pub fn default_page_size() -> i64 {
    20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_the_domain_strings() {
        for priority in Priority::ALL {
            let dto = PriorityDto::from(*priority);
            assert_eq!(
                serde_json::to_value(dto).ok(),
                Some(serde_json::json!(priority.as_str()))
            );
        }
        for status in TicketStatus::ALL {
            let dto = StatusDto::from(*status);
            assert_eq!(
                serde_json::to_value(dto).ok(),
                Some(serde_json::json!(status.as_str()))
            );
            assert_eq!(TicketStatus::from(dto), *status);
        }
        for role in Role::ALL {
            let dto = RoleDto::from(*role);
            assert_eq!(
                serde_json::to_value(dto).ok(),
                Some(serde_json::json!(role.as_str()))
            );
        }
        for state in ClockState::ALL {
            let dto = ClockStateDto::from(state);
            assert_eq!(
                serde_json::to_value(dto).ok(),
                Some(serde_json::json!(state.as_str()))
            );
        }
        for metric in SlaMetric::ALL {
            let dto = SlaMetricDto::from(metric);
            assert_eq!(
                serde_json::to_value(dto).ok(),
                Some(serde_json::json!(metric.as_str()))
            );
        }
    }
}
