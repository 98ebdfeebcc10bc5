//! The transport: the HTTP API (one OpenAPI struct per resource, served together as one
//! document), the live stream's WebSocket and SSE, the middleware every request passes through,
//! and the one mapping of errors to problem+json ([`problem`]).
//!
//! A handler turns a request into domain values and a call of an application service
//! (`crate::app`), and the result into a response: no SQL, no permission rule, no business rule.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod automations;
pub mod context;
pub mod credentials;
pub mod headers;
pub mod idempotency;
pub mod json;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod notifications;
pub mod pages;
pub mod paging;
pub mod principal;
pub mod problem;
pub mod query;
pub mod rate_limit;
pub mod search;
pub mod sla;
pub mod system;
pub mod tickets;
pub mod users;
pub mod webhooks;
pub mod wire;
pub mod workforce;

use std::sync::Arc;

use docket_domain::ValidationError;
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::app::SharedApp;
use crate::config::Settings;
use context::{TrustForwardedFor, request_context};
use json::BodyLimit;
use problem::ApiError;
use rate_limit::RateLimits;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up, sign-in, tokens and passwords.
    Auth,
    /// Accounts and roles (administrators).
    Users,
    /// API keys for integrations, and the service accounts that own them.
    ApiKeys,
    /// Endpoints that receive ticket events (Standard Webhooks), and their deliveries.
    Webhooks,
    /// Your notifications, what you are told of, and who follows a ticket.
    Notifications,
    /// E-mail templates, the outbox, and replies coming in by e-mail.
    Mail,
    /// What needs a person's attention now: breaches, escalations, the queue, failures.
    Alerts,
    /// Automation rules: when something happens to a ticket, or as soon as conditions hold.
    Automations,
    /// Tickets, their comments, assignments, escalations, history and timeline.
    Tickets,
    /// Full-text and advanced search, suggestions, saved searches.
    Search,
    /// The audit trail across every aggregate.
    Audit,
    /// SLA policies, business calendars, escalation rules, and the clocks they drive.
    Sla,
    /// Agents, skills, teams, shifts; the queue, routing and workload.
    Agents,
    /// The live stream: WebSocket and Server-Sent Events.
    Live,
    /// Liveness, readiness and metrics.
    System,
}

/// Every route, documented.
pub type Apis = (
    (auth::AuthApi, users::UsersApi, api_keys::ApiKeysApi),
    tickets::TicketsApi,
    search::SearchApi,
    (
        sla::policies::PoliciesApi,
        sla::calendars::CalendarsApi,
        sla::rules::RulesApi,
        sla::clocks::ClocksApi,
    ),
    audit::AuditApi,
    (
        workforce::skills::SkillsApi,
        workforce::agents::AgentsApi,
        workforce::teams::TeamsApi,
        workforce::shifts::ShiftsApi,
        workforce::queue::QueueApi,
        workforce::workload::WorkloadApi,
    ),
    live::LiveApi,
    (
        system::SystemApi,
        webhooks::WebhooksApi,
        notifications::NotificationsApi,
        mail::MailApi,
        alerts::AlertsApi,
        automations::AutomationsApi,
    ),
);

pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "Docket", env!("CARGO_PKG_VERSION")).description(
        "Docket is a helpdesk and SLA engine in which every fact is an immutable event. \
         Errors are application/problem+json. Writes return an ETag (send it back in If-Match \
         for optimistic concurrency) and an X-Consistency-Token. Every read by a signed-in \
         caller includes that caller's own earlier writes (through this server); send \
         `Consistency: eventual` to skip that wait, or a write's X-Consistency-Token to wait \
         for a write made through another server. POSTs accept an Idempotency-Key.",
    )
}

/// The OpenAPI document as served at `/openapi.json`: poem-openapi's, with every optional
/// property marked `nullable`, and the read headers every signed-in read accepts.
pub fn openapi_document() -> serde_json::Value {
    document_of(&api_service())
}

fn document_of(api: &OpenApiService<Apis, ()>) -> serde_json::Value {
    let mut document: serde_json::Value = serde_json::from_str(&api.spec()).unwrap_or_default();
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for schema in schemas.values_mut() {
            lift_notes_out_of_all_of(schema);
            mark_optional_properties_nullable(schema);
        }
        schemas.insert(
            CONSISTENCY_SCHEMA.to_string(),
            serde_json::json!({
                "type": "string",
                "enum": ["eventual", "read-your-writes"],
                "description": "Whether a read waits for the caller's own earlier writes.",
            }),
        );
    }
    if let Some(paths) = document
        .pointer_mut("/paths")
        .and_then(|p| p.as_object_mut())
    {
        for operations in paths.values_mut() {
            if let Some(read) = operations.get_mut("get") {
                declare_read_headers(read);
            }
        }
    }
    document
}

/// The schema of the `Consistency` header, one for every read that takes it.
const CONSISTENCY_SCHEMA: &str = "Consistency";

/// Keys that say something about a property without constraining it.
const NOTES: &[&str] = &[
    "description",
    "title",
    "default",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// poem-openapi writes a documented property of a named type as `allOf: [{$ref}, {description}]`.
/// Generators read an `allOf` of more than one member as a new type merged from them (and
/// cannot merge an enum: openapi-python-client skipped every operation that used one), so the
/// notes move beside the reference, which stays alone in its `allOf`.
fn lift_notes_out_of_all_of(schema: &mut serde_json::Value) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for property in properties.values_mut() {
        let Some(fields) = property.as_object_mut() else {
            continue;
        };
        let Some(members) = fields.get("allOf").and_then(|a| a.as_array()) else {
            continue;
        };
        let (references, notes): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = members
            .iter()
            .partition(|member| member.get("$ref").is_some());
        let only_notes = notes.iter().all(|member| {
            member
                .as_object()
                .is_some_and(|m| m.keys().all(|k| NOTES.contains(&k.as_str())))
        });
        if references.len() != 1 || notes.is_empty() || !only_notes {
            continue;
        }
        let reference = references[0].clone();
        let lifted: Vec<(String, serde_json::Value)> = notes
            .iter()
            .filter_map(|member| member.as_object())
            .flat_map(|member| member.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        fields.insert("allOf".to_string(), serde_json::json!([reference]));
        for (key, value) in lifted {
            fields.entry(key).or_insert(value);
        }
    }
}

/// An optional property that is `None` is written as `null`, and OpenAPI 3.0 only allows
/// `null` where the schema says `nullable: true`; without it, generated clients and schema
/// validators (schemathesis) reject the API's own answers.
fn mark_optional_properties_nullable(schema: &mut serde_json::Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Some(fields) = property.as_object_mut() else {
            continue;
        };
        // `nullable` beside a bare `$ref` is ignored by OpenAPI 3.0: wrap the reference.
        if let Some(reference) = fields.remove("$ref") {
            fields.insert(
                "allOf".to_string(),
                serde_json::json!([{ "$ref": reference }]),
            );
        }
        fields.insert("nullable".to_string(), serde_json::Value::Bool(true));
    }
}

/// The two headers `principal::SignedIn` reads on every signed-in request, declared on each
/// signed-in read so that generated clients offer them.
fn declare_read_headers(operation: &mut serde_json::Value) {
    if operation.get("security").is_none() {
        return;
    }
    let headers = [
        (
            "Consistency",
            "`eventual` answers from the read models as they are, without waiting for your own \
             earlier writes (for bulk readers); `read-your-writes`, the default, waits for them.",
            serde_json::json!({"$ref": format!("#/components/schemas/{CONSISTENCY_SCHEMA}")}),
        ),
        (
            "X-Consistency-Token",
            "A token a write returned: the read waits until it includes that write (for writes \
             made through another server).",
            serde_json::json!({"type": "string"}),
        ),
    ];
    let Some(object) = operation.as_object_mut() else {
        return;
    };
    let parameters = object
        .entry("parameters")
        .or_insert_with(|| serde_json::json!([]));
    let Some(list) = parameters.as_array_mut() else {
        return;
    };
    for (name, description, schema) in headers {
        let declared = list
            .iter()
            .any(|p| p["name"] == name && p["in"] == "header");
        if !declared {
            list.push(serde_json::json!({
                "name": name,
                "in": "header",
                "required": false,
                "deprecated": false,
                "explode": true,
                "description": description,
                "schema": schema,
            }));
        }
    }
}

/// `/openapi.json`, serialised once at start-up.
#[derive(Clone)]
struct OpenApiJson(bytes::Bytes);

#[poem::handler]
fn openapi_json(document: poem::web::Data<&OpenApiJson>) -> Response {
    Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(poem::Body::from_bytes(document.0.0.clone()))
}

/// The whole HTTP surface with its middleware, innermost first: panics caught, idempotency
/// keys, the API key presented, rate limits, request metrics, the request context (correlation
/// id, client address), the headers every response carries.
pub fn routes(app: SharedApp, settings: &Settings) -> impl Endpoint + use<> {
    let api = api_service();
    let explorer = api.swagger_ui();
    let document = document_of(&api);
    let route_templates = metrics::RouteTemplates::of(&document);
    let known_queries = query::KnownQueries::of(&document);
    let document = OpenApiJson(document.to_string().into());
    // The API's paths are absolute (`/api/…`, `/health`, `/ready`, `/metrics`); everything else
    // is the web app's.
    let api = Arc::new(api.into_endpoint());
    Route::new()
        .at("/openapi.json", poem::get(openapi_json).data(document))
        .nest("/docs", explorer)
        .nest_no_strip("/api", api.clone())
        .at("/health", api.clone())
        .at("/ready", api.clone())
        .at("/metrics", api)
        .nest(
            "/",
            pages::with_security_headers(
                pages::routes().with(poem::middleware::Compression::new()),
            ),
        )
        .with(CatchPanic::new())
        .around(idempotency::idempotency)
        .around(query::as_documented)
        // Each `around` names its inner endpoint's type twice; boxing here keeps the type of the
        // whole stack within the compiler's depth limit, for one dynamic call per request.
        .boxed()
        .around(credentials::resolve)
        .boxed()
        .around(rate_limit::limit)
        .around(metrics::record)
        .around(request_context)
        .around(headers::response_headers)
        .data(app)
        .data(Arc::new(route_templates))
        .data(Arc::new(known_queries))
        .data(Arc::new(RateLimits::from_settings(settings)))
        .data(BodyLimit(settings.max_body_bytes))
        .data(TrustForwardedFor(settings.trust_forwarded_for))
        .data(headers::ResponsePolicy::from_settings(settings))
}

/// `"7"`: the strong ETag of an aggregate at version 7.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header names: `"7"`, `W/"7"` or `7`. `*` means "any".
pub fn if_match(header: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = header.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    let value = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::InvalidParameter {
            field: "If-Match".into(),
            detail: "must be an ETag from this API, such as \"3\"".into(),
        })
}

/// Whether an `If-None-Match` header names `tag` (or is `*`). Weak and strong forms of the same
/// tag match, as RFC 9110's weak comparison has it for `If-None-Match`.
pub fn matches_any(if_none_match: Option<&str>, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let Some(header) = if_none_match else {
        return false;
    };
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || opaque(candidate) == opaque(tag))
}

/// A field the domain refused to build, as a 422 naming it.
pub fn invalid(error: ValidationError) -> ApiError {
    ApiError::validation(error.field, error.reason)
}

/// A comma list of a query parameter (`open,pending`) as domain values.
pub fn comma_list<T: std::str::FromStr<Err = ValidationError>>(
    field: &str,
    raw: Option<&str>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else {
        return Ok(vec![]);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>().map_err(|e| ApiError::InvalidParameter {
                field: field.to_string(),
                detail: e.reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_domain::TicketStatus;

    #[test]
    fn if_match_accepts_strong_weak_bare_and_any() {
        assert_eq!(if_match(Some("\"3\"")).ok(), Some(Some(3)));
        assert_eq!(if_match(Some("W/\"3\"")).ok(), Some(Some(3)));
        assert_eq!(if_match(Some("3")).ok(), Some(Some(3)));
        assert_eq!(if_match(Some("*")).ok(), Some(None));
        assert_eq!(if_match(None).ok(), Some(None));
        assert!(if_match(Some("\"abc\"")).is_err());
    }

    #[test]
    fn if_none_match_compares_tags_weakly_and_takes_a_list_or_any() {
        assert!(matches_any(Some("\"7\""), "\"7\""));
        assert!(matches_any(Some("W/\"7\""), "\"7\""));
        assert!(matches_any(Some("\"6\", \"7\""), "\"7\""));
        assert!(matches_any(Some("*"), "\"7\""));
        assert!(!matches_any(Some("\"6\""), "\"7\""));
        assert!(!matches_any(None, "\"7\""));
    }

    #[test]
    fn a_comma_list_is_parsed_into_domain_values_and_names_its_field() {
        let statuses = comma_list::<TicketStatus>("status", Some("open, pending,"));
        assert_eq!(
            statuses.ok(),
            Some(vec![TicketStatus::Open, TicketStatus::Pending])
        );
        let refused = comma_list::<TicketStatus>("status", Some("open,nope"));
        assert!(
            matches!(refused, Err(ApiError::InvalidParameter { ref field, .. }) if field == "status")
        );
    }

    #[test]
    fn a_documented_reference_keeps_its_reference_alone_in_all_of() {
        let mut schema = serde_json::json!({"properties": {
            "team_role": {"allOf": [{"$ref": "#/components/schemas/TeamRoleDto"},
                                    {"description": "Default `member`."}]},
            "other": {"allOf": [{"$ref": "#/a"}, {"type": "object"}]}
        }});
        lift_notes_out_of_all_of(&mut schema);
        assert_eq!(
            schema["properties"]["team_role"],
            serde_json::json!({"allOf": [{"$ref": "#/components/schemas/TeamRoleDto"}],
                               "description": "Default `member`."})
        );
        // A member that constrains is left alone.
        assert_eq!(
            schema["properties"]["other"]["allOf"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let document = openapi_document();
        let all_of = &document["components"]["schemas"]["AddMemberRequest"]["properties"]["team_role"]
            ["allOf"];
        assert_eq!(all_of.as_array().map(Vec::len), Some(1), "{all_of}");
    }

    #[test]
    fn every_signed_in_read_declares_the_read_headers() {
        let document = openapi_document();
        let get_ticket = &document["paths"]["/api/tickets/{id}"]["get"]["parameters"];
        let names: Vec<&str> = get_ticket
            .as_array()
            .map(|list| list.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"Consistency"), "{names:?}");
        assert!(names.contains(&"X-Consistency-Token"), "{names:?}");
        let health = &document["paths"]["/health"]["get"];
        assert!(health.get("parameters").is_none());
    }
}
