//! Replies by e-mail: a raw RFC 5322 message (from an MTA pipe or a mail provider's webhook),
//! authenticated by `DOCKET_INBOUND_TOKEN`, becomes a public comment on the ticket its
//! `References` or its subject (`[TKT-000051]`) names, written as its sender when the sender is
//! the ticket's customer or active staff. Anything else is refused. Every message is recorded
//! with what became of it.

use docket_domain::values::{CommentBody, TicketNumber, UserId};
use mail_parser::{HeaderValue, MessageParser};
use uuid::Uuid;

use crate::app::accounts;
use crate::app::{App, AppError, Caller, Origin, tickets};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Commented {
        ticket_id: Uuid,
        comment_id: Uuid,
        /// The ticket's version with the comment (absent when a repeat got the first answer).
        ticket_version: Option<i64>,
    },
    Refused {
        reason: String,
    },
}

/// Same bytes, compared in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The ticket a thread header names: `<ticket-<uuid>@…>` (or a mail of ours, `<uuid@…>`).
fn ticket_in_references(ids: &[String]) -> Option<Uuid> {
    ids.iter().find_map(|id| {
        let id = id.trim().trim_start_matches('<');
        let local = id.split('@').next()?;
        Uuid::parse_str(local.strip_prefix("ticket-")?).ok()
    })
}

/// The number a subject carries in brackets: `Re: [TKT-000051] Invoices`.
fn number_in_subject(subject: &str) -> Option<TicketNumber> {
    subject
        .split('[')
        .skip(1)
        .filter_map(|part| part.split(']').next())
        .find_map(TicketNumber::recognise)
}

/// The reply itself: what comes before the quoted message (`On … wrote:`, `>` lines) and the
/// signature (`-- `).
pub fn reply_text(body: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('>')
            || line == "-- "
            || (trimmed.starts_with("On ") && trimmed.ends_with("wrote:"))
            || trimmed.starts_with("-----Original Message-----")
        {
            break;
        }
        kept.push(line);
    }
    kept.join("\n").trim().to_string()
}

fn header_ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => vec![text.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    }
}

/// One message that came in, and what became of it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InboundView {
    pub id: Uuid,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub comment_id: Option<Uuid>,
    pub outcome: String,
    pub reason: Option<String>,
}

/// Every message that came in, newest first (administrators).
pub async fn log(
    app: &App,
    caller: &Caller,
    page: i64,
    page_size: i64,
) -> Result<(Vec<InboundView>, i64), AppError> {
    caller.require(
        docket_domain::access::Permission::ManageIntegrations,
        "read inbound mail",
    )?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_mail")
        .fetch_one(&app.pool)
        .await?;
    let items = sqlx::query_as(
        "SELECT id, received_at, from_address, subject, message_id, ticket_id, comment_id,
                outcome, reason
           FROM inbound_mail ORDER BY received_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(page_size)
    .bind((page.max(1) - 1).saturating_mul(page_size))
    .fetch_all(&app.pool)
    .await?;
    Ok((items, total))
}

/// Checks the gateway's token.
pub fn authenticate(app: &App, presented: Option<&str>) -> Result<(), AppError> {
    let Some(expected) = &app.outbound.settings.inbound_token else {
        return Err(AppError::NotPermitted(
            "inbound mail is not configured here (DOCKET_INBOUND_TOKEN)".into(),
        ));
    };
    match presented {
        Some(token) if same(token.trim(), expected.expose()) => Ok(()),
        Some(_) => Err(AppError::Unauthenticated(
            "the inbound token is wrong".into(),
        )),
        None => Err(AppError::Unauthenticated(
            "send the inbound token (Authorization: Bearer or X-Inbound-Token)".into(),
        )),
    }
}

/// Takes one raw message.
pub async fn receive(app: &App, origin: &Origin, raw: &[u8]) -> Result<Received, AppError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| AppError::invalid("message", "is not an RFC 5322 message"))?;
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase());
    let subject = message.subject().unwrap_or_default().to_string();
    let message_id = message.message_id().map(str::to_string);
    let mut thread: Vec<String> = header_ids(message.in_reply_to());
    thread.extend(header_ids(message.references()));
    let body = message
        .body_text(0)
        .map(|t| t.to_string())
        .unwrap_or_default();
    // A gateway that retries (its answer was lost) delivers the same message again: it gets
    // the first answer, and the ticket one comment.
    if let Some(id) = &message_id {
        let earlier: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT ticket_id, comment_id FROM inbound_mail
              WHERE message_id = $1 AND outcome = 'commented' AND comment_id IS NOT NULL
              LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&app.pool)
        .await?;
        if let Some((ticket_id, comment_id)) = earlier {
            return Ok(Received::Commented {
                ticket_id,
                comment_id,
                ticket_version: None,
            });
        }
    }
    let automatic = message
        .header("Auto-Submitted")
        .and_then(|v| v.as_text())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"))
        // The older convention of mailing lists and vacation programs.
        || message
            .header("Precedence")
            .and_then(|v| v.as_text())
            .is_some_and(|v| {
                ["bulk", "junk", "list", "auto_reply"]
                    .iter()
                    .any(|p| v.trim().eq_ignore_ascii_case(p))
            });
    let outcome = if automatic {
        // Out-of-office answers and other robots' mail are not replies: commenting them would
        // start a loop of mail between two machines.
        Received::Refused {
            reason: "it is an automatic message (Auto-Submitted or Precedence)".to_string(),
        }
    } else {
        decide(app, origin, from.as_deref(), &subject, &thread, &body).await?
    };
    let (ticket, comment, result, reason) = match &outcome {
        Received::Commented {
            ticket_id,
            comment_id,
            ..
        } => (Some(*ticket_id), Some(*comment_id), "commented", None),
        Received::Refused { reason } => (None, None, "refused", Some(reason.clone())),
    };
    sqlx::query(
        "INSERT INTO inbound_mail (id, from_address, subject, message_id, ticket_id, comment_id,
                                   outcome, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(&from)
    .bind(&subject)
    .bind(&message_id)
    .bind(ticket)
    .bind(comment)
    .bind(result)
    .bind(reason)
    .execute(&app.pool)
    .await?;
    Ok(outcome)
}

async fn decide(
    app: &App,
    origin: &Origin,
    from: Option<&str>,
    subject: &str,
    thread: &[String],
    body: &str,
) -> Result<Received, AppError> {
    let refuse = |reason: &str| {
        Ok(Received::Refused {
            reason: reason.to_string(),
        })
    };
    let Some(from) = from else {
        return refuse("the message has no sender");
    };
    // A thread of ours names the ticket's id, read from the log; a number in the subject is
    // looked up in the read model.
    let ticket: Option<(Uuid, UserId)> = match ticket_in_references(thread) {
        Some(id) => {
            let (loaded, _) = app.tickets.load(&id.to_string()).await?;
            loaded.state().map(|t| (id, t.customer_id))
        }
        None => match number_in_subject(subject) {
            Some(number) => {
                let mut found =
                    docket_projections::tickets::get_by_number(&app.pool, number.0).await?;
                if found.is_none() {
                    // Perhaps opened a moment ago: look again once the read model has every
                    // ticket written so far.
                    crate::app::router::wait_for_newest(
                        app,
                        &docket_projections::registry::TICKETS,
                        &[<docket_domain::ticket::Ticket as cqrs_es::Aggregate>::TYPE],
                    )
                    .await?;
                    found = docket_projections::tickets::get_by_number(&app.pool, number.0).await?;
                }
                found.map(|row| (row.id, UserId(row.customer_id)))
            }
            None => None,
        },
    };
    let Some((ticket_id, customer)) = ticket else {
        return refuse("it names no ticket (no [TKT-…] in the subject, no thread of ours)");
    };
    let sender: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT user_id FROM credentials WHERE email = $1")
            .bind(from)
            .fetch_optional(&app.pool)
            .await?;
    let Some(user) = (match sender {
        Some(id) => accounts::find_user(app, UserId(id)).await?,
        None => None,
    }) else {
        return refuse("the sender has no account here");
    };
    let allowed = user.active && (user.role.is_staff() || user.id == customer);
    if !allowed {
        return refuse("the sender is neither the ticket's customer nor active staff");
    }
    let text = reply_text(body);
    let Ok(body) = CommentBody::parse(&text) else {
        return refuse("the reply is empty once the quoted message is left out");
    };
    let caller = Caller::from(user);
    let added = tickets::comment(app, &caller, origin, ticket_id, None, body, false).await?;
    Ok(Received::Commented {
        ticket_id,
        comment_id: added.comment.id,
        ticket_version: Some(added.ticket_version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_leaves_out_the_quoted_message_and_the_signature() {
        let body = "Thanks, that worked.\nAll good now.\n\nOn Mon, 7 Dec 2026 at 09:00, Docket wrote:\n> We are on it.\n";
        assert_eq!(reply_text(body), "Thanks, that worked.\nAll good now.");
        assert_eq!(reply_text("Yes.\n-- \nAnn"), "Yes.");
        assert_eq!(reply_text("> only quoted"), "");
    }

    #[test]
    fn the_ticket_is_found_by_its_thread_or_its_subject() {
        let id = Uuid::from_u128(5);
        assert_eq!(
            ticket_in_references(&[format!("<ticket-{id}@example.com>")]),
            Some(id)
        );
        assert_eq!(
            ticket_in_references(&["<abc@example.com>".to_string()]),
            None
        );
        assert_eq!(
            number_in_subject("Re: [TKT-000051] Invoices"),
            Some(TicketNumber(51))
        );
        assert_eq!(number_in_subject("Re: Invoices"), None);
    }
}
