//! A person's saved search: a name and the query they want to run again. Saved searches are
//! event-sourced like every other change, so "who saved what, when" is in the log too.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Actor, UserId, ValidationError};

/// Identifies a saved search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SavedSearchId(pub Uuid);

/// A saved search's name: 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SearchName(String);

impl SearchName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(ValidationError::new("name", "must not be empty")),
            n if n > 100 => Err(ValidationError::new(
                "name",
                "must be at most 100 characters",
            )),
            _ => Ok(Self(name.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SavedSearchCommand {
    /// `query` is the search as the API accepts it; the API validated it.
    Save {
        search_id: SavedSearchId,
        name: SearchName,
        query: serde_json::Value,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Delete {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SavedSearchEvent {
    SearchSaved {
        search_id: SavedSearchId,
        owner_id: UserId,
        name: SearchName,
        query: serde_json::Value,
        occurred_at: DateTime<Utc>,
    },
    SavedSearchDeleted {
        deleted_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

impl SavedSearchEvent {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            SavedSearchEvent::SearchSaved { occurred_at, .. }
            | SavedSearchEvent::SavedSearchDeleted { occurred_at, .. } => *occurred_at,
        }
    }
}

crate::event_names!(SavedSearchEvent {
    SearchSaved,
    SavedSearchDeleted,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedSearchError {
    #[error("no such saved search")]
    NotFound,
    #[error("the saved search already exists")]
    AlreadyExists,
    #[error("only its owner may delete a saved search")]
    NotOwner,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedSearch {
    owner: Option<UserId>,
    deleted: bool,
}

impl SavedSearch {
    pub fn decide(
        &self,
        command: &SavedSearchCommand,
    ) -> Result<Vec<SavedSearchEvent>, SavedSearchError> {
        match (command, self.owner) {
            (
                SavedSearchCommand::Save {
                    search_id,
                    name,
                    query,
                    actor,
                    at,
                },
                None,
            ) => Ok(vec![SavedSearchEvent::SearchSaved {
                search_id: *search_id,
                owner_id: actor.user_id,
                name: name.clone(),
                query: query.clone(),
                occurred_at: *at,
            }]),
            (SavedSearchCommand::Save { .. }, Some(_)) => Err(SavedSearchError::AlreadyExists),
            (SavedSearchCommand::Delete { .. }, None) => Err(SavedSearchError::NotFound),
            (SavedSearchCommand::Delete { .. }, Some(_)) if self.deleted => {
                Err(SavedSearchError::NotFound)
            }
            (SavedSearchCommand::Delete { actor, at }, Some(owner)) => {
                if actor.user_id != owner {
                    return Err(SavedSearchError::NotOwner);
                }
                Ok(vec![SavedSearchEvent::SavedSearchDeleted {
                    deleted_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }

    pub fn owner(&self) -> Option<UserId> {
        self.owner.filter(|_| !self.deleted)
    }
}

impl Aggregate for SavedSearch {
    const TYPE: &'static str = "saved_search";
    type Command = SavedSearchCommand;
    type Event = SavedSearchEvent;
    type Error = SavedSearchError;
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
            SavedSearchEvent::SearchSaved { owner_id, .. } => self.owner = Some(owner_id),
            SavedSearchEvent::SavedSearchDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }
    fn owner() -> Actor {
        Actor::new(UserId(Uuid::from_u128(1)), Role::Agent)
    }
    fn saved() -> SavedSearchEvent {
        SavedSearchEvent::SearchSaved {
            search_id: SavedSearchId(Uuid::from_u128(9)),
            owner_id: owner().user_id,
            name: SearchName::parse("My VPN tickets").unwrap_or_else(|e| panic!("{e}")),
            query: serde_json::json!({"q": "vpn"}),
            occurred_at: at(),
        }
    }

    #[test]
    fn a_search_is_saved_for_the_person_who_saves_it() {
        TestFramework::<SavedSearch>::with(())
            .given_no_previous_events()
            .when(SavedSearchCommand::Save {
                search_id: SavedSearchId(Uuid::from_u128(9)),
                name: SearchName::parse(" My VPN tickets ").unwrap_or_else(|e| panic!("{e}")),
                query: serde_json::json!({"q": "vpn"}),
                actor: owner(),
                at: at(),
            })
            .then_expect_events(vec![saved()]);
    }

    #[test]
    fn only_the_owner_deletes_it_and_only_once() {
        let other = Actor::new(UserId(Uuid::from_u128(2)), Role::Admin);
        TestFramework::<SavedSearch>::with(())
            .given(vec![saved()])
            .when(SavedSearchCommand::Delete {
                actor: other,
                at: at(),
            })
            .then_expect_error(SavedSearchError::NotOwner);
        let deleted = SavedSearchEvent::SavedSearchDeleted {
            deleted_by: owner(),
            occurred_at: at(),
        };
        TestFramework::<SavedSearch>::with(())
            .given(vec![saved()])
            .when(SavedSearchCommand::Delete {
                actor: owner(),
                at: at(),
            })
            .then_expect_events(vec![deleted.clone()]);
        TestFramework::<SavedSearch>::with(())
            .given(vec![saved(), deleted])
            .when(SavedSearchCommand::Delete {
                actor: owner(),
                at: at(),
            })
            .then_expect_error(SavedSearchError::NotFound);
    }

    #[test]
    fn a_name_must_be_short_and_not_blank() {
        assert!(SearchName::parse("  ").is_err());
        assert!(SearchName::parse(&"n".repeat(101)).is_err());
    }
}
