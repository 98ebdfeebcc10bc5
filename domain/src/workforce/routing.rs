//! The router: given the agents as they are at an instant, who may take a ticket and who should.
//!
//! Pure: the application gathers [`AgentSnapshot`]s from the read models and the instant from its
//! clock; the decision, with the scores it was made on, is recorded on the ticket, so "why this
//! agent" is answered from the log and an auditor can re-run it.
//!
//! Score (lower wins), the seed systems' formula by default:
//! `active_tickets × 1 + critical_tickets × 2 − proficiency × 5`. Ties go to whoever was assigned
//! least recently (never assigned first), then to the smaller user id, so the result is
//! deterministic.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::shift::BreakWindow;
use crate::values::{AgentStatus, Priority, Role, ShiftId, SkillId, TeamId, UserId};

/// The weights of the score. Configurable; the defaults are the seed formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoutingWeights {
    pub active_tickets: f64,
    pub critical_tickets: f64,
    pub proficiency: f64,
}

impl Default for RoutingWeights {
    fn default() -> Self {
        Self {
            active_tickets: 1.0,
            critical_tickets: 2.0,
            proficiency: 5.0,
        }
    }
}

/// What a ticket needs of its agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRequirements {
    pub skill_id: Option<SkillId>,
    pub team_id: Option<TeamId>,
}

/// An agent's shift as routing needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftWindow {
    pub shift_id: ShiftId,
    pub started_at: DateTime<Utc>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub breaks: Vec<BreakWindow>,
}

/// An agent as the read models show them at the moment of routing.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSnapshot {
    pub agent_id: UserId,
    pub role: Role,
    pub active: bool,
    pub status: AgentStatus,
    pub shift: Option<ShiftWindow>,
    pub capacity: u32,
    pub open_tickets: u32,
    pub critical_tickets: u32,
    pub skills: BTreeMap<SkillId, u8>,
    pub teams: BTreeSet<TeamId>,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// Why an agent was not a candidate. The first reason found, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ineligibility {
    Inactive,
    NotInTeam,
    LacksSkill,
    NotAvailable,
    OffShift,
    OnBreak,
    AtCapacity,
    /// The agent the ticket is being moved away from.
    CurrentAssignee,
}

impl Ineligibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Ineligibility::Inactive => "inactive",
            Ineligibility::NotInTeam => "not_in_team",
            Ineligibility::LacksSkill => "lacks_skill",
            Ineligibility::NotAvailable => "not_available",
            Ineligibility::OffShift => "off_shift",
            Ineligibility::OnBreak => "on_break",
            Ineligibility::AtCapacity => "at_capacity",
            Ineligibility::CurrentAssignee => "current_assignee",
        }
    }
}

impl AgentSnapshot {
    pub fn on_shift(&self, at: DateTime<Utc>) -> bool {
        self.shift.as_ref().is_some_and(|shift| {
            shift.started_at <= at && shift.scheduled_end.is_none_or(|end| at < end)
        })
    }

    pub fn on_break(&self, at: DateTime<Utc>) -> bool {
        self.shift
            .as_ref()
            .is_some_and(|shift| shift.breaks.iter().any(|b| b.contains(at)))
    }

    /// Whether the agent may take a ticket with `requirements` at `at`, or the first reason not.
    pub fn eligibility(
        &self,
        requirements: &RoutingRequirements,
        at: DateTime<Utc>,
    ) -> Result<(), Ineligibility> {
        if !self.active || !self.role.can_be_assigned() {
            return Err(Ineligibility::Inactive);
        }
        if let Some(team) = requirements.team_id
            && !self.teams.contains(&team)
        {
            return Err(Ineligibility::NotInTeam);
        }
        if let Some(skill) = requirements.skill_id
            && !self.skills.contains_key(&skill)
        {
            return Err(Ineligibility::LacksSkill);
        }
        if self.status != AgentStatus::Available {
            return Err(Ineligibility::NotAvailable);
        }
        if !self.on_shift(at) {
            return Err(Ineligibility::OffShift);
        }
        if self.on_break(at) {
            return Err(Ineligibility::OnBreak);
        }
        if self.open_tickets >= self.capacity {
            return Err(Ineligibility::AtCapacity);
        }
        Ok(())
    }

    /// The proficiency that counts for `requirements`: in the required skill, 0 when none is.
    pub fn proficiency(&self, requirements: &RoutingRequirements) -> u8 {
        requirements
            .skill_id
            .and_then(|skill| self.skills.get(&skill).copied())
            .unwrap_or(0)
    }

    pub fn score(&self, requirements: &RoutingRequirements, weights: &RoutingWeights) -> f64 {
        weights.active_tickets * f64::from(self.open_tickets)
            + weights.critical_tickets * f64::from(self.critical_tickets)
            - weights.proficiency * f64::from(self.proficiency(requirements))
    }

    /// The agent has just been given a ticket of `priority` at `at`.
    pub fn take(&mut self, priority: Priority, at: DateTime<Utc>) {
        self.open_tickets += 1;
        if priority == Priority::Critical {
            self.critical_tickets += 1;
        }
        self.last_assigned_at = Some(at);
    }

    /// A ticket of `priority` has been moved away from the agent.
    pub fn release(&mut self, priority: Priority) {
        self.open_tickets = self.open_tickets.saturating_sub(1);
        if priority == Priority::Critical {
            self.critical_tickets = self.critical_tickets.saturating_sub(1);
        }
    }
}

/// A candidate with the figures its score was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredCandidate {
    pub agent_id: UserId,
    pub score: f64,
    pub open_tickets: u32,
    pub critical_tickets: u32,
    pub proficiency: u8,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// How many agents were left out, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    pub reason: Ineligibility,
    pub agents: u32,
}

/// A routing decision, as recorded on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub requirements: RoutingRequirements,
    pub weights: RoutingWeights,
    /// Absent: nobody was eligible and the ticket waits in the queue.
    pub chosen: Option<UserId>,
    /// The best candidates, best first (at most [`RoutingDecision::RECORDED_CANDIDATES`]).
    pub candidates: Vec<ScoredCandidate>,
    /// How many agents were eligible in all.
    pub eligible: u32,
    /// How many were not, and why.
    pub excluded: Vec<Exclusions>,
}

impl RoutingDecision {
    /// Enough to explain the choice without writing a thousand scores into every event.
    pub const RECORDED_CANDIDATES: usize = 10;

    /// No decision yet: the ticket waits in the queue with its requirements.
    pub fn waiting(requirements: RoutingRequirements, weights: RoutingWeights) -> Self {
        Self {
            requirements,
            weights,
            chosen: None,
            candidates: Vec::new(),
            eligible: 0,
            excluded: Vec::new(),
        }
    }
}

/// Orders candidates: lower score, then least recently assigned (never first), then user id.
fn rank(a: &ScoredCandidate, b: &ScoredCandidate) -> Ordering {
    a.score
        .total_cmp(&b.score)
        .then_with(|| match (a.last_assigned_at, b.last_assigned_at) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(&y),
        })
        .then_with(|| a.agent_id.cmp(&b.agent_id))
}

/// Decides who gets a ticket with `requirements` at `at`. `away_from` is the agent a ticket is
/// being moved from (rebalancing), who is never chosen.
pub fn route(
    requirements: RoutingRequirements,
    agents: &[AgentSnapshot],
    weights: RoutingWeights,
    at: DateTime<Utc>,
    away_from: Option<UserId>,
) -> RoutingDecision {
    let mut candidates = Vec::new();
    let mut excluded: BTreeMap<Ineligibility, u32> = BTreeMap::new();
    for agent in agents {
        let verdict = if away_from == Some(agent.agent_id) {
            Err(Ineligibility::CurrentAssignee)
        } else {
            agent.eligibility(&requirements, at)
        };
        match verdict {
            Ok(()) => candidates.push(ScoredCandidate {
                agent_id: agent.agent_id,
                score: agent.score(&requirements, &weights),
                open_tickets: agent.open_tickets,
                critical_tickets: agent.critical_tickets,
                proficiency: agent.proficiency(&requirements),
                last_assigned_at: agent.last_assigned_at,
            }),
            Err(reason) => *excluded.entry(reason).or_default() += 1,
        }
    }
    let eligible = candidates.len() as u32;
    // Only the best few are kept: a partial selection, then a sort of those.
    let keep = RoutingDecision::RECORDED_CANDIDATES.min(candidates.len());
    if keep > 0 && candidates.len() > keep {
        candidates.select_nth_unstable_by(keep - 1, rank);
        candidates.truncate(keep);
    }
    candidates.sort_by(rank);
    RoutingDecision {
        requirements,
        weights,
        chosen: candidates.first().map(|c| c.agent_id),
        candidates,
        eligible,
        excluded: excluded
            .into_iter()
            .map(|(reason, agents)| Exclusions { reason, agents })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, 0)
            .single()
            .unwrap_or_default()
    }
    fn billing() -> SkillId {
        SkillId(Uuid::from_u128(1))
    }
    fn network() -> SkillId {
        SkillId(Uuid::from_u128(2))
    }
    fn tier1() -> TeamId {
        TeamId(Uuid::from_u128(10))
    }

    /// Given: an available agent on shift since 08:00 until 17:00, no load, no skills.
    fn agent(n: u128) -> AgentSnapshot {
        AgentSnapshot {
            agent_id: UserId(Uuid::from_u128(n)),
            role: Role::Agent,
            active: true,
            status: AgentStatus::Available,
            shift: Some(ShiftWindow {
                shift_id: ShiftId(Uuid::from_u128(1000 + n)),
                started_at: at(8, 0),
                scheduled_end: Some(at(17, 0)),
                breaks: vec![],
            }),
            capacity: 10,
            open_tickets: 0,
            critical_tickets: 0,
            skills: BTreeMap::new(),
            teams: BTreeSet::new(),
            last_assigned_at: None,
        }
    }

    fn with_load(mut a: AgentSnapshot, open: u32, critical: u32) -> AgentSnapshot {
        a.open_tickets = open;
        a.critical_tickets = critical;
        a
    }

    fn with_skill(mut a: AgentSnapshot, skill: SkillId, proficiency: u8) -> AgentSnapshot {
        a.skills.insert(skill, proficiency);
        a
    }

    fn needs(skill: Option<SkillId>, team: Option<TeamId>) -> RoutingRequirements {
        RoutingRequirements {
            skill_id: skill,
            team_id: team,
        }
    }

    fn decide(requirements: RoutingRequirements, agents: &[AgentSnapshot]) -> RoutingDecision {
        route(
            requirements,
            agents,
            RoutingWeights::default(),
            at(10, 0),
            None,
        )
    }

    #[test]
    fn the_score_is_the_seed_formula() {
        let a = with_skill(with_load(agent(1), 4, 1), billing(), 3);
        // 4 + 2 × 1 − 5 × 3
        assert_eq!(
            a.score(&needs(Some(billing()), None), &RoutingWeights::default()),
            -9.0
        );
        // No skill required: proficiency counts as 0.
        assert_eq!(a.score(&needs(None, None), &RoutingWeights::default()), 6.0);
        let heavier = RoutingWeights {
            active_tickets: 1.0,
            critical_tickets: 10.0,
            proficiency: 0.5,
        };
        assert_eq!(a.score(&needs(Some(billing()), None), &heavier), 12.5);
    }

    #[test]
    fn the_lowest_score_wins_and_proficiency_outweighs_a_little_load() {
        // Ana: 2 open, proficiency 4 → 2 − 20 = −18. Ben: 0 open, proficiency 2 → −10.
        // Cy: no billing skill, not a candidate.
        let ana = with_skill(with_load(agent(1), 2, 0), billing(), 4);
        let ben = with_skill(agent(2), billing(), 2);
        let cy = with_skill(agent(3), network(), 5);
        let decision = decide(needs(Some(billing()), None), &[cy, ben, ana]);
        assert_eq!(decision.chosen, Some(UserId(Uuid::from_u128(1))));
        assert_eq!(decision.eligible, 2);
        let scores: Vec<f64> = decision.candidates.iter().map(|c| c.score).collect();
        assert_eq!(scores, vec![-18.0, -10.0]);
        assert_eq!(
            decision.excluded,
            vec![Exclusions {
                reason: Ineligibility::LacksSkill,
                agents: 1
            }]
        );
    }

    #[test]
    fn critical_tickets_count_double() {
        // Both 3 open; Ana holds 2 critical: 3 + 4 = 7 against Ben's 3.
        let ana = with_load(agent(1), 3, 2);
        let ben = with_load(agent(2), 3, 0);
        assert_eq!(
            decide(needs(None, None), &[ana, ben]).chosen,
            Some(UserId(Uuid::from_u128(2)))
        );
    }

    #[test]
    fn ties_go_to_whoever_was_assigned_least_recently_then_to_the_smaller_id() {
        let mut ana = agent(1);
        ana.last_assigned_at = Some(at(9, 30));
        let mut ben = agent(2);
        ben.last_assigned_at = Some(at(9, 0));
        assert_eq!(
            decide(needs(None, None), &[ana.clone(), ben.clone()]).chosen,
            Some(ben.agent_id)
        );
        let never = agent(3);
        assert_eq!(
            decide(needs(None, None), &[ana, ben, never.clone()]).chosen,
            Some(never.agent_id)
        );
        // Identical in every way: the smaller id, whatever the input order.
        assert_eq!(
            decide(needs(None, None), &[agent(5), agent(4)]).chosen,
            Some(agent(4).agent_id)
        );
    }

    #[test]
    fn eligibility_rules_each_exclude_for_their_reason() {
        let requirements = needs(Some(billing()), Some(tier1()));
        let mut base = with_skill(agent(1), billing(), 3);
        base.teams.insert(tier1());
        assert_eq!(base.eligibility(&requirements, at(10, 0)), Ok(()));

        let mut inactive = base.clone();
        inactive.active = false;
        let mut customer = base.clone();
        customer.role = Role::Customer;
        let mut outsider = base.clone();
        outsider.teams.clear();
        let mut unskilled = base.clone();
        unskilled.skills.clear();
        let mut busy = base.clone();
        busy.status = AgentStatus::Busy;
        let mut away = base.clone();
        away.status = AgentStatus::Away;
        let mut no_shift = base.clone();
        no_shift.shift = None;
        let mut on_lunch = base.clone();
        if let Some(shift) = on_lunch.shift.as_mut() {
            shift.breaks.push(BreakWindow {
                starts_at: at(9, 45),
                ends_at: at(10, 15),
            });
        }
        let full = with_load(base.clone(), 10, 0);

        let cases = [
            (inactive, Ineligibility::Inactive),
            (customer, Ineligibility::Inactive),
            (outsider, Ineligibility::NotInTeam),
            (unskilled, Ineligibility::LacksSkill),
            (busy, Ineligibility::NotAvailable),
            (away, Ineligibility::NotAvailable),
            (no_shift, Ineligibility::OffShift),
            (on_lunch.clone(), Ineligibility::OnBreak),
            (full, Ineligibility::AtCapacity),
        ];
        for (agent, reason) in cases {
            assert_eq!(agent.eligibility(&requirements, at(10, 0)), Err(reason));
        }
        // Shift bounds and break bounds are instants too.
        assert_eq!(
            base.eligibility(&requirements, at(7, 59)),
            Err(Ineligibility::OffShift)
        );
        assert_eq!(
            base.eligibility(&requirements, at(17, 0)),
            Err(Ineligibility::OffShift)
        );
        assert_eq!(on_lunch.eligibility(&requirements, at(10, 15)), Ok(()));
    }

    #[test]
    fn with_no_candidate_the_ticket_waits_and_the_reasons_are_counted() {
        let mut busy = agent(1);
        busy.status = AgentStatus::Busy;
        let full = with_load(agent(2), 10, 0);
        let decision = decide(needs(None, None), &[busy, full]);
        assert_eq!(decision.chosen, None);
        assert!(decision.candidates.is_empty());
        assert_eq!(
            decision.excluded,
            vec![
                Exclusions {
                    reason: Ineligibility::NotAvailable,
                    agents: 1
                },
                Exclusions {
                    reason: Ineligibility::AtCapacity,
                    agents: 1
                },
            ]
        );
    }

    #[test]
    fn a_ticket_being_moved_never_goes_back_to_its_agent() {
        let ana = agent(1);
        let ben = with_load(agent(2), 5, 0);
        let decision = route(
            needs(None, None),
            &[ana.clone(), ben.clone()],
            RoutingWeights::default(),
            at(10, 0),
            Some(ana.agent_id),
        );
        assert_eq!(decision.chosen, Some(ben.agent_id));
    }

    #[test]
    fn only_the_best_candidates_are_recorded_in_order() {
        let agents: Vec<AgentSnapshot> = (1..=30u32)
            .map(|n| {
                let mut a = with_load(agent(u128::from(n)), 30 - n, 0);
                a.capacity = 100;
                a
            })
            .collect();
        let decision = decide(needs(None, None), &agents);
        assert_eq!(decision.eligible, 30);
        assert_eq!(
            decision.candidates.len(),
            RoutingDecision::RECORDED_CANDIDATES
        );
        assert_eq!(decision.chosen, Some(agent(30).agent_id));
        assert!(
            decision
                .candidates
                .windows(2)
                .all(|pair| rank(&pair[0], &pair[1]) == Ordering::Less)
        );
    }

    #[test]
    fn taking_a_ticket_changes_the_next_decision() {
        let mut agents = vec![agent(1), agent(2)];
        let first = decide(needs(None, None), &agents).chosen;
        assert_eq!(first, Some(agent(1).agent_id));
        agents[0].take(Priority::Critical, at(10, 0));
        assert_eq!((agents[0].open_tickets, agents[0].critical_tickets), (1, 1));
        assert_eq!(
            decide(needs(None, None), &agents).chosen,
            Some(agent(2).agent_id)
        );
        agents[0].release(Priority::Critical);
        assert_eq!((agents[0].open_tickets, agents[0].critical_tickets), (0, 0));
    }
}
