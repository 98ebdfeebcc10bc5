//! Mail templates: the ones Docket ships, the variables each kind may use, their checking on
//! save (strict: a name no mail of the kind has is refused, never rendered empty in a
//! customer's mail), and rendering, bounded in size and work.

use docket_domain::mail::{MailKind, Template};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// Bounds the work one render may do (loops, filters), so a template cannot hold the sender.
const RENDER_FUEL: u64 = 100_000;
/// A rendered part longer than this is refused (a loop gone wild).
const MAX_RENDERED: usize = 200_000;

/// What is wrong with a template, and in which of its parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {reason}")]
pub struct TemplateError {
    pub part: &'static str,
    pub reason: String,
}

/// The variables every mail has.
const COMMON: &[&str] = &[
    "ticket.number",
    "ticket.subject",
    "ticket.status",
    "ticket.priority",
    "ticket.id",
    "recipient.name",
    "recipient.email",
    "actor.name",
    "link",
];

/// The variables a kind of mail has beside the common ones.
fn specific(kind: MailKind) -> &'static [&'static str] {
    match kind {
        MailKind::TicketCreated | MailKind::TicketAssigned => &[],
        MailKind::PublicReply => &["comment.body"],
        MailKind::StatusChanged => &["status.from", "status.to"],
        MailKind::SlaWarning | MailKind::SlaBreached => &["sla.metric", "sla.due_at"],
        MailKind::Escalated => &["escalation.level", "escalation.reason"],
        MailKind::Report => &["report.title", "report.body"],
    }
}

/// Every variable a kind of mail may use, for people writing templates.
pub fn variables(kind: MailKind) -> Vec<&'static str> {
    COMMON.iter().chain(specific(kind)).copied().collect()
}

/// Whether `used` (a path a template reads, such as `ticket.number`) is one the kind has: the
/// path itself, or an object holding some (`ticket`).
fn known(kind: MailKind, used: &str) -> bool {
    variables(kind)
        .iter()
        .any(|v| *v == used || v.starts_with(&format!("{used}.")))
}

/// The template Docket ships for `kind`.
pub fn shipped(kind: MailKind) -> Template {
    let (subject, text, html): (&str, &str, &str) = match kind {
        MailKind::TicketCreated => (
            "[{{ ticket.number }}] We received your request: {{ ticket.subject }}",
            "Hello {{ recipient.name }},\n\nWe received your request \"{{ ticket.subject }}\" and opened ticket {{ ticket.number }}. Reply to this e-mail to add to it.\n\n{{ link }}\n",
            "<p>Hello {{ recipient.name }},</p><p>We received your request “{{ ticket.subject }}” and opened ticket <strong>{{ ticket.number }}</strong>. Reply to this e-mail to add to it.</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::TicketAssigned => (
            "[{{ ticket.number }}] Assigned to you: {{ ticket.subject }}",
            "Hello {{ recipient.name }},\n\n{{ actor.name }} assigned {{ ticket.number }} ({{ ticket.priority }}) to you: {{ ticket.subject }}\n\n{{ link }}\n",
            "<p>Hello {{ recipient.name }},</p><p>{{ actor.name }} assigned <strong>{{ ticket.number }}</strong> ({{ ticket.priority }}) to you: {{ ticket.subject }}</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::PublicReply => (
            "[{{ ticket.number }}] {{ ticket.subject }}",
            "{{ actor.name }} wrote:\n\n{{ comment.body }}\n\n{{ link }}\n",
            "<p>{{ actor.name }} wrote:</p><blockquote>{{ comment.body }}</blockquote><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::StatusChanged => (
            "[{{ ticket.number }}] Now {{ status.to }}: {{ ticket.subject }}",
            "Hello {{ recipient.name }},\n\n{{ actor.name }} moved {{ ticket.number }} from {{ status.from }} to {{ status.to }}.\n\n{{ link }}\n",
            "<p>Hello {{ recipient.name }},</p><p>{{ actor.name }} moved <strong>{{ ticket.number }}</strong> from {{ status.from }} to {{ status.to }}.</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::SlaWarning => (
            "[{{ ticket.number }}] At risk: {{ sla.metric }} due {{ sla.due_at }}",
            "{{ ticket.number }} ({{ ticket.subject }}) is at risk: its {{ sla.metric }} target is due {{ sla.due_at }}.\n\n{{ link }}\n",
            "<p><strong>{{ ticket.number }}</strong> ({{ ticket.subject }}) is at risk: its {{ sla.metric }} target is due {{ sla.due_at }}.</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::SlaBreached => (
            "[{{ ticket.number }}] Breached: {{ sla.metric }}",
            "{{ ticket.number }} ({{ ticket.subject }}) breached its {{ sla.metric }} target, due {{ sla.due_at }}.\n\n{{ link }}\n",
            "<p><strong>{{ ticket.number }}</strong> ({{ ticket.subject }}) breached its {{ sla.metric }} target, due {{ sla.due_at }}.</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::Escalated => (
            "[{{ ticket.number }}] Escalated to level {{ escalation.level }}: {{ ticket.subject }}",
            "{{ actor.name }} escalated {{ ticket.number }} to level {{ escalation.level }}: {{ escalation.reason }}\n\n{{ link }}\n",
            "<p>{{ actor.name }} escalated <strong>{{ ticket.number }}</strong> to level {{ escalation.level }}: {{ escalation.reason }}</p><p><a href=\"{{ link }}\">Open the ticket</a></p>",
        ),
        MailKind::Report => (
            "{{ report.title }}",
            "{{ report.body }}\n",
            "<h1>{{ report.title }}</h1><pre>{{ report.body }}</pre>",
        ),
    };
    Template {
        subject: subject.to_string(),
        text: text.to_string(),
        html: html.to_string(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(RENDER_FUEL));
    env
}

/// A context with every variable of `kind`, for checking a template before it is saved.
pub fn sample_context(kind: MailKind) -> Value {
    json!({
        "ticket": {"number": "TKT-000042", "subject": "The printer is on fire", "status": "open",
                   "priority": "high", "id": "01a24f33-0000-7000-8000-000000000000"},
        "recipient": {"name": "Ann Archer", "email": "ann@example.com"},
        "actor": {"name": "Bob Baker"},
        "link": "https://docket.example.com/tickets/01a24f33-0000-7000-8000-000000000000",
        "comment": {"body": "We are on it."},
        "status": {"from": "open", "to": "resolved"},
        "sla": {"metric": "resolution", "due_at": "2026-12-07 17:00 UTC"},
        "escalation": {"level": 2, "reason": "No answer in a day"},
        "report": {"title": "Weekly report", "body": "42 tickets resolved."},
    })
    .as_object()
    .map(|all| {
        // Only what the kind has: a template reading another kind's variable must fail.
        let mut kept = serde_json::Map::new();
        for (name, value) in all {
            if variables(kind)
                .iter()
                .any(|v| *v == name || v.starts_with(&format!("{name}.")))
            {
                kept.insert(name.clone(), value.clone());
            }
        }
        Value::Object(kept)
    })
    .unwrap_or(Value::Null)
}

/// Checks a template of `kind`: each part compiles, reads only the kind's variables, and
/// renders within bounds.
pub fn check(kind: MailKind, template: &Template) -> Result<(), TemplateError> {
    let env = environment();
    let sample = sample_context(kind);
    for (part, source) in parts(template) {
        let compiled = env.template_from_str(source).map_err(|e| TemplateError {
            part,
            reason: describe(&e),
        })?;
        let mut unknown: Vec<String> = compiled
            .undeclared_variables(true)
            .into_iter()
            .filter(|used| !known(kind, used))
            .collect();
        unknown.sort();
        if let Some(first) = unknown.first() {
            return Err(TemplateError {
                part,
                reason: format!(
                    "`{first}` is not a variable of a {} mail; it has {}",
                    kind.as_str(),
                    variables(kind).join(", ")
                ),
            });
        }
        render_part(&env, part, source, &sample)?;
    }
    Ok(())
}

fn parts(template: &Template) -> [(&'static str, &str); 3] {
    [
        ("subject", template.subject.as_str()),
        ("text", template.text.as_str()),
        ("html", template.html.as_str()),
    ]
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!(
            "{} (line {line})",
            error.detail().unwrap_or("invalid template")
        ),
        None => error.detail().unwrap_or("invalid template").to_string(),
    }
}

fn render_part(
    env: &Environment<'static>,
    part: &'static str,
    source: &str,
    context: &Value,
) -> Result<String, TemplateError> {
    let rendered = env.render_str(source, context).map_err(|e| TemplateError {
        part,
        reason: match e.kind() {
            minijinja::ErrorKind::OutOfFuel => "takes too much work to render".to_string(),
            _ => e.to_string(),
        },
    })?;
    if rendered.len() > MAX_RENDERED {
        return Err(TemplateError {
            part,
            reason: "renders longer than 200 KB".to_string(),
        });
    }
    Ok(rendered)
}

/// A rendered mail: subject (one line), text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders `template` with `context`; the HTML part escapes what it shows.
pub fn render(template: &Template, context: &Value) -> Result<Rendered, TemplateError> {
    let mut env = environment();
    let subject = render_part(&env, "subject", &template.subject, context)?;
    let text = render_part(&env, "text", &template.text, context)?;
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let html = render_part(&env, "html", &template.html, context)?;
    Ok(Rendered {
        // A subject is one line, whatever its variables held.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_passes_its_own_check() {
        for kind in MailKind::ALL {
            assert_eq!(check(*kind, &shipped(*kind)), Ok(()), "{kind}");
        }
    }

    #[test]
    fn an_unknown_variable_is_refused_naming_the_part() {
        let mut template = shipped(MailKind::PublicReply);
        template.text = "Hi {{ recipient.nmae }}".into();
        let refused = check(MailKind::PublicReply, &template);
        assert_eq!(refused.as_ref().map_err(|e| e.part), Err("text"));
        assert!(
            refused
                .err()
                .is_some_and(|e| e.reason.contains("recipient.nmae"))
        );
        // Another kind's variable is unknown here.
        let mut template = shipped(MailKind::TicketAssigned);
        template.subject = "{{ comment.body }}".into();
        assert_eq!(
            check(MailKind::TicketAssigned, &template).map_err(|e| e.part),
            Err("subject")
        );
    }

    #[test]
    fn broken_syntax_and_runaway_loops_are_refused() {
        let mut template = shipped(MailKind::TicketCreated);
        template.html = "<p>{% if ticket.number %}unclosed".into();
        assert_eq!(
            check(MailKind::TicketCreated, &template).map_err(|e| e.part),
            Err("html")
        );
        template.html =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
                .into();
        let refused = check(MailKind::TicketCreated, &template);
        assert!(refused.is_err(), "{refused:?}");
    }

    #[test]
    fn html_escapes_what_it_shows_and_the_subject_is_one_line() {
        let mut context = sample_context(MailKind::PublicReply);
        context["comment"]["body"] = json!("<script>alert(1)</script>");
        context["ticket"]["subject"] = json!("two\nlines");
        let rendered = render(&shipped(MailKind::PublicReply), &context);
        let rendered = rendered.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            rendered.html.contains("&lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(rendered.text.contains("<script>"));
        assert_eq!(rendered.subject, "[TKT-000042] two lines");
    }
}
