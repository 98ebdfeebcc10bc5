//! Names for the ids a ticket holds: who an assignee is, what a team is called, and the agents
//! and teams a form offers. Staff read them from the workforce model; a customer learns only
//! the name of the agent who holds their own ticket.

use std::collections::HashMap;

use docket_domain::UserId;
use uuid::Uuid;

use docket_projections::workforce::AgentRow;

use super::{PageError, Visitor};
use crate::app::{SharedApp, accounts, workforce};

/// One choice in a select: its value, label, and whether it is the one chosen.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub chosen: bool,
}

/// An agent a ticket can be given to, with what the choice needs to know.
pub struct AgentChoice {
    pub id: Uuid,
    pub label: String,
}

#[derive(Default)]
pub struct Directory {
    me: Uuid,
    people: HashMap<Uuid, String>,
    teams: Vec<(Uuid, String)>,
    agents: Vec<AgentChoice>,
}

/// The active agents of `roster`, labelled with their status and load, by label.
pub fn assignable(roster: &[AgentRow]) -> Vec<AgentChoice> {
    let mut agents: Vec<AgentChoice> = roster
        .iter()
        .filter(|row| row.active)
        .map(|row| AgentChoice {
            id: row.agent_id,
            label: format!(
                "{} ({}, {} open of {})",
                row.full_name,
                row.status.as_str(),
                row.open_tickets,
                row.capacity
            ),
        })
        .collect();
    agents.sort_by(|a, b| a.label.cmp(&b.label));
    agents
}

/// Agents as choices, `chosen` selected.
pub fn agent_choices(agents: &[AgentChoice], chosen: Option<Uuid>) -> Vec<Choice> {
    agents
        .iter()
        .map(|agent| Choice {
            value: agent.id.to_string(),
            label: agent.label.clone(),
            chosen: Some(agent.id) == chosen,
        })
        .collect()
}

impl Directory {
    /// Agents and teams for staff; nothing for customers (see [`Directory::learn_assignee`]).
    pub async fn load(app: &SharedApp, visitor: &Visitor) -> Result<Self, PageError> {
        let caller = visitor.caller();
        let mut directory = Directory {
            me: caller.id.0,
            ..Directory::default()
        };
        if !caller.is_staff() {
            return Ok(directory);
        }
        let roster = workforce::roster(app, caller).await?;
        for row in &roster {
            directory.people.insert(row.agent_id, row.full_name.clone());
        }
        directory.agents = assignable(&roster);
        directory.teams = workforce::team_rows(app, caller)
            .await?
            .into_iter()
            .map(|team| (team.id, team.name))
            .collect();
        Ok(directory)
    }

    /// Knows only who "you" are: for lists where every ticket is the viewer's own.
    pub fn of_viewer(visitor: &Visitor) -> Self {
        Directory {
            me: visitor.caller().id.0,
            ..Directory::default()
        }
    }

    /// A customer is told the name of the agent who holds their ticket, and no one else's.
    pub async fn learn_assignee(
        &mut self,
        app: &SharedApp,
        assignee: Option<Uuid>,
    ) -> Result<(), PageError> {
        let Some(id) = assignee.filter(|id| !self.people.contains_key(id)) else {
            return Ok(());
        };
        if let Some(user) = accounts::find_user(app, UserId(id)).await? {
            self.people.insert(id, user.full_name);
        }
        Ok(())
    }

    /// How the page names a person: "you", their name, or "nobody".
    pub fn person(&self, id: Option<Uuid>) -> String {
        match id {
            None => "nobody".to_string(),
            Some(id) if id == self.me => "you".to_string(),
            Some(id) => self
                .people
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "an agent".to_string()),
        }
    }

    pub fn team(&self, id: Option<Uuid>) -> Option<String> {
        let id = id?;
        Some(
            self.teams
                .iter()
                .find(|(team, _)| *team == id)
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| "a team".to_string()),
        )
    }

    /// The teams as choices, with `chosen` selected.
    pub fn team_choices(&self, chosen: Option<Uuid>) -> Vec<Choice> {
        self.teams
            .iter()
            .map(|(id, name)| Choice {
                value: id.to_string(),
                label: name.clone(),
                chosen: Some(*id) == chosen,
            })
            .collect()
    }

    /// The active agents as choices, with `chosen` selected.
    pub fn agent_choices(&self, chosen: Option<Uuid>) -> Vec<Choice> {
        agent_choices(&self.agents, chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> (Directory, Uuid, Uuid, Uuid) {
        let (me, other, team) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut directory = Directory {
            me,
            ..Directory::default()
        };
        directory.people.insert(other, "Ada Agent".into());
        directory.teams.push((team, "Billing".into()));
        (directory, me, other, team)
    }

    #[test]
    fn people_are_named_from_the_viewers_side() {
        let (directory, me, other, _) = directory();
        assert_eq!(directory.person(Some(me)), "you");
        assert_eq!(directory.person(Some(other)), "Ada Agent");
        assert_eq!(directory.person(None), "nobody");
        assert_eq!(directory.person(Some(Uuid::new_v4())), "an agent");
    }

    #[test]
    fn teams_are_named_and_offered_with_the_current_one_chosen() {
        let (directory, _, _, team) = directory();
        assert_eq!(directory.team(Some(team)).as_deref(), Some("Billing"));
        assert_eq!(directory.team(None), None);
        let choices = directory.team_choices(Some(team));
        assert_eq!(choices.len(), 1);
        assert!(choices[0].chosen);
        assert!(!directory.team_choices(None)[0].chosen);
    }
}
