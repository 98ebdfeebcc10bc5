//! The ticket list, the ticket page with its conversation and controls, and the customer
//! portal. Staff see `/tickets…`; customers see `/portal…`, where the same services show them
//! their own tickets and public replies only.

use askama::Template;
use chrono::{DateTime, Utc};
use docket_domain::sla::ClockState;
use docket_domain::values::{CommentBody, Description, Subject, Tags};
use docket_domain::{Priority, TicketStatus};
use docket_projections::tickets::{TicketFilter, TicketRow, TicketSort};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::directory::{Choice, Directory};
use super::{
    Chrome, CsrfForm, PageError, Visitor, html, options, picked, respond, see_other, signed_in,
    visitor,
};
use crate::app::search::{self as search_service, html_escape};
use crate::app::tickets::{self as service, CommentView, NewTicket, TicketRef};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::comma_list;
use crate::http::search::AdvancedSearchRequest;

/// `/`: the place a visitor starts from.
#[poem::handler]
pub async fn home(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            Ok(match visitor(req, &app).await? {
                None => see_other("/login"),
                Some(v) if v.caller().is_staff() => see_other("/tickets"),
                Some(_) => see_other("/portal"),
            })
        }
        .await,
    )
}

// ---- what the templates show -------------------------------------------------------------

fn when(at: DateTime<Utc>) -> (String, String) {
    (
        crate::http::wire::Timestamp(at).to_string(),
        at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A ticket's worst SLA clock, as a badge; a running clock also counts down to its deadline.
pub struct SlaBadge {
    pub(super) state: &'static str,
    pub(super) label: String,
    /// The deadline a running or at-risk clock counts down to (RFC 3339), or empty.
    pub(super) due_at: String,
}

fn sla_badge(row: &TicketRow) -> Option<SlaBadge> {
    let state = row.sla_state?;
    let due = row
        .sla_due_at
        .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string());
    let counting = matches!(state, ClockState::Running | ClockState::AtRisk);
    let (state, label) = match state {
        ClockState::Breached => ("breached", "Breached".to_string()),
        ClockState::AtRisk => (
            "at_risk",
            format!("At risk, due {}", due.unwrap_or_default()),
        ),
        ClockState::Running => ("running", format!("Due {}", due.unwrap_or_default())),
        ClockState::Paused => ("paused", "Paused".to_string()),
        ClockState::Met => ("met", "Met".to_string()),
    };
    let due_at = match row.sla_due_at {
        Some(at) if counting => crate::http::wire::Timestamp(at).to_string(),
        _ => String::new(),
    };
    Some(SlaBadge {
        state,
        label,
        due_at,
    })
}

pub(super) struct Row {
    pub(super) id: Uuid,
    pub(super) href: String,
    pub(super) number: String,
    /// The subject as HTML: escaped, with the words a search matched in `<mark>`.
    pub(super) subject_html: String,
    /// Where a search matched, as HTML (escaped, `<mark>`ed); empty without a search.
    pub(super) snippet_html: String,
    pub(super) assignee: String,
    pub(super) status: &'static str,
    pub(super) priority: &'static str,
    pub(super) sla: Option<SlaBadge>,
    pub(super) updated_at: String,
    pub(super) updated_label: String,
}

pub(super) fn row(ticket: &TicketRow, base: &str, names: &Directory) -> Row {
    let (updated_at, updated_label) = when(ticket.updated_at);
    Row {
        id: ticket.id,
        href: format!("{base}/{}", ticket.id),
        number: docket_domain::values::TicketNumber(ticket.number).to_string(),
        subject_html: html_escape(&ticket.subject),
        snippet_html: String::new(),
        assignee: names.person(ticket.assignee_id),
        status: ticket.status.as_str(),
        priority: ticket.priority.as_str(),
        sla: sla_badge(ticket),
        updated_at,
        updated_label,
    }
}

pub struct TicketCard {
    id: Uuid,
    /// `you`, the agent's name, or `nobody`.
    assignee: String,
    held_by_me: bool,
    team: Option<String>,
    escalation_level: i32,
    base: String,
    number: String,
    subject: String,
    description: String,
    status: &'static str,
    priority: &'static str,
    version: i64,
    sla: Option<SlaBadge>,
    created_at: String,
    created_label: String,
}

fn card(ticket: &TicketRow, base: &str, me: Uuid, names: &Directory) -> TicketCard {
    let (created_at, created_label) = when(ticket.created_at);
    TicketCard {
        id: ticket.id,
        assignee: names.person(ticket.assignee_id),
        held_by_me: ticket.assignee_id == Some(me),
        team: names.team(ticket.team_id),
        escalation_level: ticket.escalation_level,
        base: format!("{base}/{}", ticket.id),
        number: docket_domain::values::TicketNumber(ticket.number).to_string(),
        subject: ticket.subject.clone(),
        description: ticket.description.clone(),
        status: ticket.status.as_str(),
        priority: ticket.priority.as_str(),
        version: ticket.version,
        sla: sla_badge(ticket),
        created_at,
        created_label,
    }
}

pub struct CommentCard {
    id: Uuid,
    internal: bool,
    author: String,
    body: String,
    created_at: String,
    created_label: String,
}

fn comment_card(comment: &CommentView, me: Uuid) -> CommentCard {
    let (created_at, created_label) = when(comment.created_at);
    CommentCard {
        id: comment.id,
        internal: comment.internal,
        author: if comment.author_id == me {
            "you".to_string()
        } else {
            comment.author_role.as_str().to_string()
        },
        body: comment.body.clone(),
        created_at,
        created_label,
    }
}

/// Where a visitor's tickets live: `/tickets` for staff, `/portal/tickets` for customers.
fn base_of(visitor: &Visitor) -> &'static str {
    if visitor.caller().is_staff() {
        "/tickets"
    } else {
        "/portal/tickets"
    }
}

// ---- the list ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    /// `me`, `none`, an agent's id, or empty for anyone.
    #[serde(default)]
    assignee: String,
    /// A team's id, or empty for any.
    #[serde(default)]
    team: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    tag: String,
    /// `YYYY-MM-DD`, the first day shown.
    #[serde(default)]
    created_from: String,
    /// `YYYY-MM-DD`, the last day shown.
    #[serde(default)]
    created_to: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<i64>,
}

/// The sorts the list offers, as `sort` values and labels. Without a sort chosen, a search
/// shows its best matches first, and a list without search text its newest tickets.
const SORTS: [(&str, &str); 6] = [
    ("", "Best match"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-updated_at", "Recently changed"),
    ("-priority", "Most urgent priority"),
    ("sla_due_at", "SLA due soonest"),
];

impl ListQuery {
    /// The filters that are set (without the page), as names and values.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("q", &self.q),
            ("status", &self.status),
            ("priority", &self.priority),
            ("assignee", &self.assignee),
            ("team", &self.team),
            ("category", &self.category),
            ("tag", &self.tag),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
            ("sort", &self.sort),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key, value.as_str()))
        .collect()
    }

    /// The query again (without the page), for the live part's URL and the page links.
    fn encoded(&self) -> String {
        self.pairs()
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn page(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 1_000_000)
    }
}

/// A day typed as `YYYY-MM-DD`, as the instant it starts (UTC); `next` for the day after.
fn day(field: &str, typed: &str, next: bool) -> Result<Option<DateTime<Utc>>, AppError> {
    if typed.trim().is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(typed.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::invalid(field, "must be a date such as 2026-12-01"))?;
    let date = if next {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(date.and_hms_opt(0, 0, 0).map(|at| at.and_utc()))
}

fn text(typed: &str) -> Option<String> {
    Some(typed.trim().to_string()).filter(|t| !t.is_empty())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A list of tickets as the pages show it, and where its live refresh comes from.
pub(super) struct Rows {
    pub(super) rows: Vec<Row>,
    pub(super) total: i64,
    pub(super) query: String,
    /// Staff see who holds each ticket.
    pub(super) staff: bool,
}

struct Listed {
    rows: Vec<Row>,
    total: i64,
    statuses: Vec<TicketStatus>,
    priorities: Vec<Priority>,
}

/// Links to the pages before and after, when there are any.
pub struct Pager {
    page: i64,
    pages: i64,
    previous: Option<String>,
    next: Option<String>,
}

const PAGE_SIZE: i64 = 50;

fn pager(query: &ListQuery, total: i64) -> Pager {
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = query.page();
    let at = |n: i64| {
        let rest = query.encoded();
        if rest.is_empty() {
            format!("/tickets?page={n}")
        } else {
            format!("/tickets?{rest}&page={n}")
        }
    };
    Pager {
        page,
        pages,
        previous: (page > 1).then(|| at(page - 1)),
        next: (page < pages).then(|| at(page + 1)),
    }
}

async fn listed(
    app: &SharedApp,
    visitor: &Visitor,
    query: &ListQuery,
    names: &Directory,
) -> Result<Listed, PageError> {
    // The list's query read once, as the search it saves as; that search's filter is the list's.
    let filter = TicketFilter {
        text_names_number: true,
        page: query.page(),
        page_size: PAGE_SIZE,
        ..as_saved_search(query, visitor.caller().id.0)?.filter()
    };
    let (statuses, priorities) = (filter.statuses.clone(), filter.priorities.clone());
    let ranked = filter.text.is_some() && query.sort.is_empty();
    let base = base_of(visitor);
    let (lines, total) = if ranked {
        // Best matches first, with the words found marked and where they were found.
        let found = search_service::search(app, visitor.caller(), filter).await?;
        let lines = found
            .items
            .iter()
            .map(|hit| Row {
                subject_html: hit.subject_highlight.clone(),
                snippet_html: hit.snippet.clone(),
                ..row(&hit.ticket, base, names)
            })
            .collect();
        (lines, found.total)
    } else {
        let found = service::list(app, visitor.caller(), filter).await?;
        let lines = found.items.iter().map(|t| row(t, base, names)).collect();
        (lines, found.total)
    };
    Ok(Listed {
        rows: lines,
        total,
        statuses,
        priorities,
    })
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct ListPage {
    chrome: Chrome,
    filter: ListQuery,
    statuses: Vec<(&'static str, bool)>,
    priorities: Vec<(&'static str, bool)>,
    assignees: Vec<Choice>,
    teams: Vec<Choice>,
    sorts: Vec<(&'static str, &'static str, bool)>,
    pager: Pager,
    list: Rows,
    saved: Vec<SavedLink>,
    save_name: String,
    save_error: Option<String>,
}

#[derive(Template)]
#[template(path = "ticket_rows.html")]
pub(super) struct RowsPart {
    pub(super) list: Rows,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    chrome: Chrome,
    list: Rows,
}

/// A saved search, as a link to the list it shows.
pub struct SavedLink {
    id: Uuid,
    name: String,
    href: String,
}

/// Who an agent may filter the list by: anyone, me, nobody, or one of the agents by name.
fn assignee_choices(names: &Directory, chosen: &str) -> Vec<Choice> {
    let fixed = [("", "Anyone"), ("me", "Me"), ("none", "Nobody")]
        .into_iter()
        .map(|(value, label)| Choice {
            value: value.to_string(),
            label: label.to_string(),
            chosen: chosen == value,
        });
    let agents = names.agent_choices(chosen.parse().ok());
    fixed.chain(agents).collect()
}

/// The list page; `save` is a save-this-search form that did not go through, kept as typed.
async fn list_page(
    app: &SharedApp,
    visitor: &Visitor,
    query: ListQuery,
    save: (String, Option<String>),
) -> Result<Response, PageError> {
    let names = Directory::load(app, visitor).await?;
    let found = listed(app, visitor, &query, &names).await?;
    let chosen_sort = query.sort.as_str();
    let mut teams = vec![Choice {
        value: String::new(),
        label: "Any team".to_string(),
        chosen: query.team.is_empty(),
    }];
    teams.extend(names.team_choices(query.team.parse().ok()));
    let saved = search_service::saved(app, visitor.caller())
        .await?
        .into_iter()
        .map(|row| SavedLink {
            href: saved_search_href(&row.query),
            id: row.id,
            name: row.name,
        })
        .collect();
    let page = ListPage {
        chrome: visitor.chrome(app, true)?,
        statuses: options(TicketStatus::ALL, &found.statuses, TicketStatus::as_str),
        priorities: options(Priority::ALL, &found.priorities, Priority::as_str),
        assignees: assignee_choices(&names, &query.assignee),
        teams,
        sorts: SORTS
            .into_iter()
            .map(|(value, label)| (value, label, chosen_sort == value))
            .collect(),
        pager: pager(&query, found.total),
        list: Rows {
            rows: found.rows,
            total: found.total,
            query: format!("/tickets/rows?{}", query.encoded()),
            staff: true,
        },
        saved,
        save_name: save.0,
        save_error: save.1,
        filter: query,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

/// Staff's ticket list: filters, search, saved searches, and new tickets appearing live.
#[poem::handler]
pub async fn list(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<ListQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            if !visitor.caller().is_staff() {
                return Ok(see_other("/portal"));
            }
            list_page(&app, &visitor, query, (String::new(), None)).await
        }
        .await,
    )
}

/// The list's rows alone, for the live refresh.
#[poem::handler]
pub async fn rows(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<ListQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let names = Directory::load(&app, &visitor).await?;
            let found = listed(&app, &visitor, &query, &names).await?;
            let part = RowsPart {
                list: Rows {
                    rows: found.rows,
                    total: found.total,
                    query: format!("/tickets/rows?{}", query.encoded()),
                    staff: visitor.caller().is_staff(),
                },
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct SuggestQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "suggestions.html")]
struct SuggestionsPart {
    suggestions: Vec<String>,
}

/// Subjects that start with what has been typed in the search box, as `<option>`s for its
/// datalist (fetched by htmx as the person types).
#[poem::handler]
pub async fn suggest(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<SuggestQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let typed = query.q.trim();
            let suggestions = if typed.chars().count() < 2 {
                Vec::new()
            } else {
                let typed: String = typed.chars().take(100).collect();
                search_service::suggest(&app, visitor.caller(), &typed).await?
            };
            Ok(html(
                StatusCode::OK,
                SuggestionsPart { suggestions }.render()?,
            ))
        }
        .await,
    )
}

// ---- saved searches ------------------------------------------------------------------------

/// The list's query as a saved search, in the API's shape (`AdvancedSearchRequest`), so a
/// search saved here is the same search through the API and back.
fn as_saved_search(query: &ListQuery, me: Uuid) -> Result<AdvancedSearchRequest, AppError> {
    let bad = |e: crate::http::problem::ApiError| AppError::invalid("filter", e.to_string());
    let statuses = comma_list::<TicketStatus>("status", Some(&query.status)).map_err(bad)?;
    let priorities = comma_list::<Priority>("priority", Some(&query.priority)).map_err(bad)?;
    let assignee_id = match query.assignee.as_str() {
        "" | "none" => None,
        "me" => Some(me),
        typed => picked(typed, "an assignee").map_err(|e| AppError::invalid("assignee", e))?,
    };
    Ok(AdvancedSearchRequest {
        q: text(&query.q),
        status: Some(statuses.into_iter().map(Into::into).collect())
            .filter(|s: &Vec<_>| !s.is_empty()),
        priority: Some(priorities.into_iter().map(Into::into).collect())
            .filter(|p: &Vec<_>| !p.is_empty()),
        assignee_id,
        unassigned: (query.assignee == "none").then_some(true),
        team_id: picked(&query.team, "a team").map_err(|e| AppError::invalid("team", e))?,
        category: text(&query.category),
        tags: text(&query.tag).map(|tag| vec![tag]),
        created_from: day("created_from", &query.created_from, false)?,
        created_to: day("created_to", &query.created_to, true)?,
        sort: text(&query.sort),
        ..AdvancedSearchRequest::default()
    })
}

/// The list URL that shows a saved search (one saved through the API too).
fn saved_search_href(saved: &serde_json::Value) -> String {
    let Ok(search) = serde_json::from_value::<AdvancedSearchRequest>(saved.clone()) else {
        return "/tickets".to_string();
    };
    let join = |values: Vec<String>| values.join(",");
    let date = |at: Option<DateTime<Utc>>, last: bool| {
        at.map(|at| {
            let day = at.date_naive();
            // The saved end is the start of the day after the last one shown.
            let day = if last {
                day.pred_opt().unwrap_or(day)
            } else {
                day
            };
            day.format("%Y-%m-%d").to_string()
        })
        .unwrap_or_default()
    };
    let query = ListQuery {
        q: search.q.unwrap_or_default(),
        status: join(
            search
                .status
                .unwrap_or_default()
                .into_iter()
                .map(|s| TicketStatus::from(s).as_str().to_string())
                .collect(),
        ),
        priority: join(
            search
                .priority
                .unwrap_or_default()
                .into_iter()
                .map(|p| Priority::from(p).as_str().to_string())
                .collect(),
        ),
        assignee: match (search.unassigned, search.assignee_id) {
            (Some(true), _) => "none".to_string(),
            (_, Some(id)) => id.to_string(),
            _ => String::new(),
        },
        team: search.team_id.map(|t| t.to_string()).unwrap_or_default(),
        category: search.category.unwrap_or_default(),
        tag: search
            .tags
            .and_then(|tags| tags.into_iter().next())
            .unwrap_or_default(),
        created_from: date(search.created_from, false),
        created_to: date(search.created_to, true),
        sort: search.sort.unwrap_or_default(),
        page: None,
    };
    format!("/tickets?{}", query.encoded())
}

#[derive(Debug, Deserialize)]
pub struct SaveSearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    query: ListQuery,
}

/// Saves the list's current filters under a name; the name is checked beside its field.
#[poem::handler]
pub async fn save_search(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<SaveSearchForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let name = match docket_domain::saved_search::SearchName::parse(&form.name) {
                Ok(name) => name,
                Err(e) => {
                    let why = if form.name.trim().is_empty() {
                        "Name the search to save it.".to_string()
                    } else {
                        e.reason
                    };
                    return list_page(&app, &visitor, form.query, (form.name.clone(), Some(why)))
                        .await;
                }
            };
            let search = as_saved_search(&form.query, visitor.caller().id.0)?;
            let query = serde_json::to_value(&search).map_err(AppError::internal)?;
            search_service::save(&app, visitor.caller(), &origin, name, query).await?;
            Ok(see_other(&format!("/tickets?{}", form.query.encoded())))
        }
        .await,
    )
}

/// Forgets one of the caller's saved searches.
#[poem::handler]
pub async fn delete_search(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            search_service::delete(&app, visitor.caller(), &origin, id).await?;
            Ok(see_other("/tickets"))
        }
        .await,
    )
}

/// The caller's own unfinished tickets, most urgent SLA first: the first part of "My work".
pub(super) async fn my_open(app: &SharedApp, visitor: &Visitor) -> Result<Rows, PageError> {
    let caller = visitor.caller();
    let filter = TicketFilter {
        assignee_id: Some(caller.id.0),
        statuses: TicketStatus::unfinished().collect(),
        sort: TicketSort::SlaDueAsc,
        page: 1,
        page_size: PAGE_SIZE,
        ..TicketFilter::default()
    };
    let found = service::list(app, caller, filter).await?;
    // Every one of them is held by the caller: no names to look up.
    let names = Directory::of_viewer(visitor);
    Ok(Rows {
        rows: found
            .items
            .iter()
            .map(|t| row(t, "/tickets", &names))
            .collect(),
        total: found.total,
        query: "/work/rows".to_string(),
        staff: true,
    })
}

/// The agent's own open tickets, most urgent first, for the live refresh of "My work".
#[poem::handler]
pub async fn my_rows(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let part = RowsPart {
                list: my_open(&app, &visitor).await?,
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

/// The customer's own tickets.
async fn portal_list(app: &SharedApp, visitor: &Visitor) -> Result<Rows, PageError> {
    let names = Directory::of_viewer(visitor);
    let found = listed(app, visitor, &ListQuery::default(), &names).await?;
    Ok(Rows {
        rows: found.rows,
        total: found.total,
        query: "/portal/rows?".to_string(),
        staff: false,
    })
}

/// A customer's own tickets.
#[poem::handler]
pub async fn portal(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            if visitor.caller().is_staff() {
                return Ok(see_other("/tickets"));
            }
            let page = PortalPage {
                chrome: visitor.chrome(&app, true)?,
                list: portal_list(&app, &visitor).await?,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

#[poem::handler]
pub async fn portal_rows(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let part = RowsPart {
                list: portal_list(&app, &visitor).await?,
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

// ---- one ticket ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    chrome: Chrome,
    /// The viewer, whom the presence line leaves out.
    me: Uuid,
    staff: bool,
    /// May change the ticket (agents, managers, admins): the controls are shown.
    works: bool,
    ticket: TicketCard,
    agents: Vec<Choice>,
    /// The agents again, with the one an escalation that did not go through had chosen.
    escalate_to: Vec<Choice>,
    teams: Vec<Choice>,
    comments: Vec<CommentCard>,
    statuses: Vec<(&'static str, bool)>,
    priorities: Vec<(&'static str, bool)>,
    sla: Option<SlaPanel>,
    reply_body: String,
    reply_internal: bool,
    reply_error: Option<String>,
    status_error: Option<String>,
    assign_error: Option<String>,
    team_error: Option<String>,
    escalate_reason: String,
    escalate_error: Option<String>,
    /// Who follows the ticket, by name (staff); and whether the viewer does.
    followers: Vec<String>,
    following: bool,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPart {
    ticket: TicketCard,
    comments: Vec<CommentCard>,
}

#[derive(Template)]
#[template(path = "ticket_side.html")]
struct SidePart {
    ticket: TicketCard,
}

/// What the ticket page was asked to show beside the ticket: a reply or a status that did not
/// go through, kept as typed, with what was wrong.
#[derive(Default)]
struct Kept {
    reply_body: String,
    reply_internal: bool,
    reply_error: Option<String>,
    status: Option<TicketStatus>,
    status_error: Option<String>,
    priority: Option<Priority>,
    assign_error: Option<String>,
    team_error: Option<String>,
    escalate_reason: String,
    escalate_to: Option<Uuid>,
    escalate_error: Option<String>,
}

/// One SLA clock, as the ticket page shows it; `app.js` counts `due_at` down.
pub struct ClockLine {
    metric: &'static str,
    state: &'static str,
    due_at: String,
    due_label: String,
    target: String,
}

/// The ticket's SLA: the policy that applies and its clocks, computed now from the log.
pub struct SlaPanel {
    ticket_id: Uuid,
    base: String,
    policy: String,
    clocks: Vec<ClockLine>,
}

fn state_name(state: ClockState) -> &'static str {
    match state {
        ClockState::Running => "running",
        ClockState::Paused => "paused",
        ClockState::AtRisk => "at_risk",
        ClockState::Breached => "breached",
        ClockState::Met => "met",
    }
}

fn duration_label(seconds: u64) -> String {
    match (seconds / 3600, (seconds % 3600) / 60) {
        (0, minutes) => format!("{minutes} min"),
        (hours, 0) => format!("{hours} h"),
        (hours, minutes) => format!("{hours} h {minutes} min"),
    }
}

async fn sla_panel(app: &SharedApp, visitor: &Visitor, id: Uuid) -> Result<SlaPanel, PageError> {
    let check = crate::app::sla::check(app, visitor.caller(), id).await?;
    Ok(SlaPanel {
        ticket_id: id,
        base: format!("{}/{id}", base_of(visitor)),
        policy: check
            .policy
            .map(|p| format!("{} (version {})", p.name, p.version))
            .unwrap_or_else(|| "none".to_string()),
        clocks: check
            .clocks
            .iter()
            .map(|clock| {
                let (due_at, due_label) = clock.due_at.map(when).unwrap_or_default();
                ClockLine {
                    metric: clock.metric.as_str(),
                    state: state_name(clock.state),
                    due_at,
                    due_label,
                    target: duration_label(clock.target_seconds),
                }
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "sla_panel.html")]
struct SlaPart {
    sla: SlaPanel,
}

#[poem::handler]
pub async fn sla_part(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let part = SlaPart {
                sla: sla_panel(&app, &visitor, id).await?,
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

/// One routing decision from the ticket's log, with the candidates named.
pub struct DecisionLine {
    at: String,
    label: String,
    needs: String,
    chosen: String,
    eligible: u32,
    candidates: Vec<CandidateLine>,
    excluded: Vec<String>,
}

pub struct CandidateLine {
    name: String,
    score: String,
    open: u32,
    critical: u32,
    proficiency: u8,
}

/// Why the ticket went where it did: every routing decision, oldest first (found among the
/// events the page already read for its history).
async fn routing_lines(
    app: &SharedApp,
    visitor: &Visitor,
    decisions: Vec<crate::app::router::queue::RecordedDecision>,
    names: &Directory,
) -> Result<Vec<DecisionLine>, PageError> {
    if decisions.is_empty() {
        return Ok(Vec::new());
    }
    let skills = crate::app::workforce::skills(app, visitor.caller()).await?;
    let lines = decisions
        .into_iter()
        .map(|recorded| {
            let decision = recorded.decision;
            let skill = decision.requirements.skill_id.map(|skill| {
                skills
                    .iter()
                    .find(|s| s.id == skill.0)
                    .map(|s| format!("skill {}", s.name))
                    .unwrap_or_else(|| "a skill".to_string())
            });
            let team = names
                .team(decision.requirements.team_id.map(|t| t.0))
                .map(|name| format!("team {name}"));
            let needs: Vec<String> = skill.into_iter().chain(team).collect();
            let (at, label) = when(recorded.decided_at);
            DecisionLine {
                at,
                label,
                needs: if needs.is_empty() {
                    "anyone".to_string()
                } else {
                    needs.join(", ")
                },
                chosen: match decision.chosen {
                    Some(agent) => names.person(Some(agent.0)),
                    None => "nobody, so the ticket waits in the queue".to_string(),
                },
                eligible: decision.eligible,
                candidates: decision
                    .candidates
                    .iter()
                    .map(|c| CandidateLine {
                        name: names.person(Some(c.agent_id.0)),
                        score: format!("{:.1}", c.score),
                        open: c.open_tickets,
                        critical: c.critical_tickets,
                        proficiency: c.proficiency,
                    })
                    .collect(),
                excluded: decision
                    .excluded
                    .iter()
                    .map(|e| format!("{} {}", e.agents, e.reason.as_str().replace('_', " ")))
                    .collect(),
            }
        })
        .collect();
    Ok(lines)
}

/// One stay in one status, as the timeline lists it.
pub struct PeriodLine {
    status: &'static str,
    entered_at: String,
    entered_label: String,
    lasted: String,
    /// The status the ticket is in now (its stay is counted up to now).
    current: bool,
}

/// One event of the ticket's log, as the page lists it.
pub struct HistoryLine {
    sequence: i64,
    kind: String,
    by: String,
    at: String,
    label: String,
}

async fn ticket_page(
    app: &SharedApp,
    visitor: &Visitor,
    id: Uuid,
    kept: Kept,
) -> Result<Response, PageError> {
    let detail = service::get(app, visitor.caller(), TicketRef::Id(id), None).await?;
    let base = base_of(visitor);
    let me = visitor.caller().id.0;
    let mut names = Directory::load(app, visitor).await?;
    names.learn_assignee(app, detail.ticket.assignee_id).await?;
    let chosen = kept.status.unwrap_or(detail.ticket.status);
    let priority = kept.priority.unwrap_or(detail.ticket.priority);
    let sla = if visitor.caller().is_staff() {
        Some(sla_panel(app, visitor, id).await?)
    } else {
        None
    };
    let works = visitor
        .caller()
        .role
        .may(docket_domain::access::Permission::WorkTickets);
    let followers = if visitor.caller().is_staff() {
        service::followers(app, visitor.caller(), id).await?
    } else {
        Vec::new()
    };
    let following = followers.iter().any(|f| f.0 == me);
    let page = TicketPage {
        following,
        followers: followers.iter().map(|f| names.person(Some(f.0))).collect(),
        me,
        works,
        agents: names.agent_choices(detail.ticket.assignee_id),
        escalate_to: names.agent_choices(kept.escalate_to),
        teams: names.team_choices(detail.ticket.team_id),
        priorities: options(Priority::ALL, &[priority], Priority::as_str),
        sla,
        chrome: visitor.chrome(app, true)?,
        staff: visitor.caller().is_staff(),
        comments: detail
            .comments
            .iter()
            .map(|c| comment_card(c, me))
            .collect(),
        statuses: options(TicketStatus::ALL, &[chosen], TicketStatus::as_str),
        ticket: card(&detail.ticket, base, me, &names),
        reply_body: kept.reply_body,
        reply_internal: kept.reply_internal,
        reply_error: kept.reply_error,
        status_error: kept.status_error,
        assign_error: kept.assign_error,
        team_error: kept.team_error,
        escalate_reason: kept.escalate_reason,
        escalate_error: kept.escalate_error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

/// A ticket's record from its log: the status timeline, the routing decisions and every event.
/// The ticket page loads it when it is opened (a long ticket has hundreds of events).
#[derive(Template)]
#[template(path = "ticket_record.html")]
struct Record {
    ticket_id: Uuid,
    base: String,
    timeline: Vec<PeriodLine>,
    routing: Vec<DecisionLine>,
    history: Vec<HistoryLine>,
}

#[derive(Template)]
#[template(path = "ticket_record_page.html")]
struct RecordPage {
    chrome: Chrome,
    number: String,
    subject: String,
    ticket_id: Uuid,
    base: String,
    timeline: Vec<PeriodLine>,
    routing: Vec<DecisionLine>,
    history: Vec<HistoryLine>,
}

/// The record, from one read of the ticket's events (staff).
async fn record_of(app: &SharedApp, visitor: &Visitor, id: Uuid) -> Result<Record, PageError> {
    visitor.caller().require(
        docket_domain::access::Permission::ReadStaffViews,
        "see a ticket's record",
    )?;
    let events = service::history(app, visitor.caller(), id).await?;
    let names = Directory::load(app, visitor).await?;
    let timeline = docket_domain::ticket::status_timeline(
        events.iter().map(|(_, payload)| payload),
        app.time.now(),
    )
    .into_iter()
    .map(|period| {
        let (entered_at, entered_label) = when(period.entered_at);
        PeriodLine {
            status: period.status.as_str(),
            entered_at,
            entered_label,
            lasted: duration_label(u64::try_from(period.seconds).unwrap_or(0)),
            current: period.left_at.is_none(),
        }
    })
    .collect();
    let decisions = crate::app::router::queue::decisions_in(
        events.iter().map(|(event, payload)| (event, payload)),
    );
    let routing = routing_lines(app, visitor, decisions, &names).await?;
    let history = events
        .iter()
        .map(|(event, payload)| {
            let (at, label) = when(payload.occurred_at());
            let actor = payload.actor();
            // An integration's change says so: "Nightly export (service, agent)".
            let service = event.metadata().actor_kind.as_deref() == Some("service");
            HistoryLine {
                sequence: event.sequence,
                kind: event.event_type.clone(),
                by: format!(
                    "{} ({}{})",
                    names.person(Some(actor.user_id.0)),
                    if service { "service, " } else { "" },
                    actor.role.as_str()
                ),
                at,
                label,
            }
        })
        .collect();
    Ok(Record {
        ticket_id: id,
        base: format!("{}/{id}", base_of(visitor)),
        timeline,
        routing,
        history,
    })
}

/// The record as a part of the ticket page (htmx asks with `HX-Request`), or as a page of its
/// own (a link followed without JavaScript).
#[poem::handler]
pub async fn record(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let record = record_of(&app, &visitor, id).await?;
            if req.headers().contains_key("hx-request") {
                return Ok(html(StatusCode::OK, record.render()?));
            }
            let detail = service::get(&app, visitor.caller(), TicketRef::Id(id), None).await?;
            let page = RecordPage {
                chrome: visitor.chrome(&app, true)?,
                number: docket_domain::values::TicketNumber(detail.ticket.number).to_string(),
                subject: detail.ticket.subject,
                ticket_id: record.ticket_id,
                base: record.base,
                timeline: record.timeline,
                routing: record.routing,
                history: record.history,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

#[poem::handler]
pub async fn show(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            ticket_page(&app, &visitor, id, Kept::default()).await
        }
        .await,
    )
}

#[poem::handler]
pub async fn conversation(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let detail = service::get(&app, visitor.caller(), TicketRef::Id(id), None).await?;
            let me = visitor.caller().id.0;
            let part = ConversationPart {
                comments: detail
                    .comments
                    .iter()
                    .map(|c| comment_card(c, me))
                    .collect(),
                // The conversation names no assignee or team, so it needs no directory.
                ticket: card(&detail.ticket, base_of(&visitor), me, &Directory::default()),
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

#[poem::handler]
pub async fn side(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let detail = service::get(&app, visitor.caller(), TicketRef::Id(id), None).await?;
            let mut names = Directory::load(&app, &visitor).await?;
            names
                .learn_assignee(&app, detail.ticket.assignee_id)
                .await?;
            let part = SidePart {
                ticket: card(
                    &detail.ticket,
                    base_of(&visitor),
                    visitor.caller().id.0,
                    &names,
                ),
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    /// `internal` for a note staff alone see; anything else is a public reply.
    #[serde(default)]
    visibility: String,
}

/// A reply or an internal note; a refused one stays in the box with the reason beside it.
#[poem::handler]
pub async fn reply(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<ReplyForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let internal = visitor.caller().is_staff() && form.visibility == "internal";
            let kept = |reason: String| Kept {
                reply_body: form.body.clone(),
                reply_internal: internal,
                reply_error: Some(reason),
                ..Kept::default()
            };
            let body = match CommentBody::parse(&form.body) {
                Ok(body) => body,
                Err(e) => {
                    let reason = if form.body.trim().is_empty() {
                        "Write something first.".to_string()
                    } else {
                        e.reason
                    };
                    return ticket_page(&app, &visitor, id, kept(reason)).await;
                }
            };
            let done =
                service::comment(&app, visitor.caller(), &origin, id, None, body, internal).await;
            after_edit(&app, &visitor, id, done, kept).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    /// The version the page showed: a change made since is not overwritten blindly.
    #[serde(default)]
    version: Option<i64>,
}

/// A status change, guarded by the version the page showed (`If-Match`).
#[poem::handler]
pub async fn change_status(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<StatusForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let to: TicketStatus = match form.status.parse() {
                Ok(status) => status,
                Err(_) => {
                    let kept = Kept {
                        status_error: Some("Choose a status from the list.".into()),
                        ..Kept::default()
                    };
                    return ticket_page(&app, &visitor, id, kept).await;
                }
            };
            let refused = |reason: String| Kept {
                status: Some(to),
                status_error: Some(reason),
                ..Kept::default()
            };
            let done =
                service::change_status(&app, visitor.caller(), &origin, id, form.version, to, None)
                    .await;
            after_edit(&app, &visitor, id, done, refused).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct PriorityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    version: Option<i64>,
}

/// A priority change, guarded like a status change by the version the page showed.
#[poem::handler]
pub async fn change_priority(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<PriorityForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let Ok(priority) = form.priority.parse::<Priority>() else {
                let kept = Kept {
                    status_error: Some("Choose a priority from the list.".into()),
                    ..Kept::default()
                };
                return ticket_page(&app, &visitor, id, kept).await;
            };
            let change = docket_domain::ticket::TicketDetailsChange {
                priority: Some(priority),
                ..Default::default()
            };
            let refused = |reason: String| Kept {
                priority: Some(priority),
                status_error: Some(reason),
                ..Kept::default()
            };
            let done =
                service::update(&app, visitor.caller(), &origin, id, form.version, change).await;
            after_edit(&app, &visitor, id, done, refused).await
        }
        .await,
    )
}

/// The answer to a change made on the ticket page: back to the page, or the page again with
/// why the change was refused (a stale version, a refused move) kept beside its control.
async fn after_edit<T>(
    app: &SharedApp,
    visitor: &Visitor,
    id: Uuid,
    done: Result<T, AppError>,
    kept: impl FnOnce(String) -> Kept,
) -> Result<Response, PageError> {
    let reason = match done {
        Ok(_) => return Ok(see_other(&format!("{}/{id}", base_of(visitor)))),
        Err(AppError::VersionMismatch { current }) => format!(
            "Someone changed this ticket since you opened it (it is now at version {current}). \
             Check what changed, then save again."
        ),
        Err(AppError::Conflict { detail, .. } | AppError::Invalid { reason: detail, .. }) => detail,
        Err(other) => return Err(other.into()),
    };
    ticket_page(app, visitor, id, kept(reason)).await
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    /// `me` takes the ticket; `nobody` hands it back to the queue; an agent's id gives it to
    /// them.
    #[serde(default)]
    to: String,
}

/// "Assign to me" and "Unassign".
#[poem::handler]
pub async fn assign(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<AssignForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let caller = visitor.caller();
            let kept = |reason| Kept {
                assign_error: Some(reason),
                ..Kept::default()
            };
            let done = match form.to.as_str() {
                "nobody" => service::unassign(&app, caller, &origin, id, None).await,
                "me" => service::assign(&app, caller, &origin, id, None, caller.id.0, None).await,
                typed => match picked(typed, "an agent") {
                    Ok(Some(agent)) => {
                        service::assign(&app, caller, &origin, id, None, agent, None).await
                    }
                    Ok(None) | Err(_) => {
                        let reason = "Choose an agent from the list.".to_string();
                        return ticket_page(&app, &visitor, id, kept(reason)).await;
                    }
                },
            };
            after_edit(&app, &visitor, id, done, kept).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct TeamForm {
    #[serde(default)]
    csrf: String,
    /// A team's id, or empty for no team.
    #[serde(default)]
    team: String,
    #[serde(default)]
    version: Option<i64>,
}

/// Puts the ticket in a team's hands, guarded by the version the page showed.
#[poem::handler]
pub async fn set_team(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<TeamForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let kept = |reason| Kept {
                team_error: Some(reason),
                ..Kept::default()
            };
            let team = match picked(&form.team, "a team") {
                Ok(team) => team,
                Err(reason) => return ticket_page(&app, &visitor, id, kept(reason)).await,
            };
            let done =
                service::assign_team(&app, visitor.caller(), &origin, id, form.version, team).await;
            after_edit(&app, &visitor, id, done, kept).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct EscalateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    /// An agent's id to hand the ticket to as well, or empty to keep it where it is.
    #[serde(default)]
    escalate_to: String,
    #[serde(default)]
    version: Option<i64>,
}

/// Escalates one level (and to an agent when chosen); a missing reason is named beside the
/// field and nothing typed is lost.
#[poem::handler]
pub async fn escalate(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<EscalateForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let to = picked(&form.escalate_to, "an agent");
            let kept = |reason: String| Kept {
                escalate_reason: form.reason.clone(),
                escalate_to: to.clone().ok().flatten(),
                escalate_error: Some(reason),
                ..Kept::default()
            };
            let reason = match docket_domain::values::Reason::parse(&form.reason) {
                Ok(reason) => reason,
                Err(e) => {
                    let why = if form.reason.trim().is_empty() {
                        "Say why the ticket is escalated.".to_string()
                    } else {
                        e.reason
                    };
                    return ticket_page(&app, &visitor, id, kept(why)).await;
                }
            };
            let to = match to.clone() {
                Ok(to) => to,
                Err(why) => return ticket_page(&app, &visitor, id, kept(why)).await,
            };
            let done = service::escalate(
                &app,
                visitor.caller(),
                &origin,
                id,
                form.version,
                reason,
                to,
            )
            .await;
            after_edit(&app, &visitor, id, done, kept).await
        }
        .await,
    )
}

// ---- opening a ticket (customers) ------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal_new.html")]
struct NewTicketPage {
    chrome: Chrome,
    subject: String,
    description: String,
    priorities: Vec<(&'static str, bool)>,
    subject_error: Option<String>,
    description_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewTicketForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
}

fn new_ticket_page(
    chrome: Chrome,
    form: &NewTicketForm,
    errors: (Option<String>, Option<String>),
) -> Result<Response, PageError> {
    let chosen: Priority = form.priority.parse().unwrap_or(Priority::Medium);
    let page = NewTicketPage {
        chrome,
        subject: form.subject.clone(),
        description: form.description.clone(),
        priorities: options(Priority::ALL, &[chosen], Priority::as_str),
        subject_error: errors.0,
        description_error: errors.1,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn new_form(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let chrome = visitor.chrome(&app, false)?;
            new_ticket_page(chrome, &NewTicketForm::default(), (None, None))
        }
        .await,
    )
}

/// Opens a ticket as the signed-in customer; a missing field is named beside it, and nothing
/// typed is lost.
#[poem::handler]
pub async fn open(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<NewTicketForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let subject = Subject::parse(&form.subject);
            let description = Description::parse(&form.description);
            let (subject, description) = match (subject, description) {
                (Ok(subject), Ok(description)) => (subject, description),
                (subject, description) => {
                    let say = |field: &str, e: docket_domain::ValidationError, typed: &str| {
                        if typed.trim().is_empty() {
                            format!("Enter the {field}.")
                        } else {
                            e.reason
                        }
                    };
                    let errors = (
                        subject.err().map(|e| say("subject", e, &form.subject)),
                        description
                            .err()
                            .map(|e| say("description", e, &form.description)),
                    );
                    let chrome = visitor.chrome(&app, false)?;
                    return new_ticket_page(chrome, &form, errors);
                }
            };
            let ticket = NewTicket {
                customer_id: None,
                subject,
                description,
                priority: form.priority.parse().unwrap_or(Priority::Medium),
                category: None,
                tags: Tags::default(),
                auto_assign: false,
                skill: None,
                team_id: None,
            };
            let written = service::open(&app, visitor.caller(), &origin, ticket).await?;
            Ok(see_other(&format!("/portal/tickets/{}", written.ticket.id)))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_filter(team: Uuid) -> ListQuery {
        ListQuery {
            q: "vpn \"drops hourly\"".into(),
            status: "open,pending".into(),
            priority: "high".into(),
            assignee: "none".into(),
            team: team.to_string(),
            category: "network".into(),
            tag: "vpn".into(),
            created_from: "2026-11-01".into(),
            created_to: "2026-11-30".into(),
            sort: "-updated_at".into(),
            page: Some(3),
        }
    }

    #[test]
    fn a_list_saved_as_a_search_opens_as_the_same_list() {
        let query = every_filter(Uuid::new_v4());
        let saved = as_saved_search(&query, Uuid::new_v4()).map(serde_json::to_value);
        let Ok(Ok(saved)) = saved else {
            panic!("the list saves as a search: {saved:?}");
        };
        let expected = ListQuery {
            page: None,
            ..query
        };
        assert_eq!(
            saved_search_href(&saved),
            format!("/tickets?{}", expected.encoded())
        );
    }

    #[test]
    fn my_tickets_are_saved_as_mine_by_id() {
        let me = Uuid::new_v4();
        let query = ListQuery {
            assignee: "me".into(),
            ..ListQuery::default()
        };
        let Ok(saved) = as_saved_search(&query, me) else {
            panic!("the list saves as a search");
        };
        assert_eq!(saved.assignee_id, Some(me));
        assert_eq!(saved.unassigned, None);
    }

    #[test]
    fn a_filter_that_names_no_team_is_refused_not_ignored() {
        let query = ListQuery {
            team: "not-a-team".into(),
            ..ListQuery::default()
        };
        assert!(as_saved_search(&query, Uuid::new_v4()).is_err());
    }

    #[test]
    fn a_saved_search_that_is_not_one_opens_the_plain_list() {
        assert_eq!(saved_search_href(&serde_json::json!({"q": 7})), "/tickets");
    }
}

#[derive(Debug, Deserialize)]
pub struct FollowForm {
    #[serde(default)]
    csrf: String,
    /// `on` to follow, `off` to stop.
    #[serde(default)]
    to: String,
}

/// Follows the ticket, or stops (staff): they are told of what happens on it.
#[poem::handler]
pub async fn follow(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<FollowForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            if form.to == "off" {
                service::unfollow(&app, visitor.caller(), &origin, id, None).await?;
            } else {
                service::follow(&app, visitor.caller(), &origin, id, None).await?;
            }
            Ok(see_other(&format!("{}/{id}", base_of(&visitor))))
        }
        .await,
    )
}
