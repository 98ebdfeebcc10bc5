//! Business calendars (managers and admins): each with its zone, opening hours and holidays,
//! and its version history; a form to add one, and one to add a holiday (a new version).

use askama::Template;
use chrono::NaiveDate;
use docket_domain::sla::calendar::BusinessHours;
use docket_domain::sla::config::SlaCalendar;
use docket_domain::sla::document::{CalendarDocument, IntervalDocument, WEEKDAYS};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{ChangeAuthors, ChangeLine, manager};
use crate::app::sla::config::{self, CalendarSpec};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::pages::{Chrome, PageError, Visitor, html, respond, see_other};

pub struct CalendarLine {
    id: Uuid,
    name: String,
    version: u32,
    timezone: String,
    hours: String,
    holidays: Vec<String>,
    history: Vec<ChangeLine>,
}

/// The add-a-calendar form, kept as typed when it is shown again.
#[derive(Debug, Default, Deserialize)]
pub struct CalendarForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    always_open: Option<String>,
    #[serde(default)]
    monday: Option<String>,
    #[serde(default)]
    tuesday: Option<String>,
    #[serde(default)]
    wednesday: Option<String>,
    #[serde(default)]
    thursday: Option<String>,
    #[serde(default)]
    friday: Option<String>,
    #[serde(default)]
    saturday: Option<String>,
    #[serde(default)]
    sunday: Option<String>,
    #[serde(default)]
    opens: String,
    #[serde(default)]
    closes: String,
    /// One date (`YYYY-MM-DD`) per line.
    #[serde(default)]
    holidays: String,
}

impl CalendarForm {
    fn fresh() -> Self {
        Self {
            timezone: "UTC".into(),
            monday: Some("on".into()),
            tuesday: Some("on".into()),
            wednesday: Some("on".into()),
            thursday: Some("on".into()),
            friday: Some("on".into()),
            opens: "09:00".into(),
            closes: "17:00".into(),
            ..Self::default()
        }
    }

    /// The weekdays ticked, by name, in the calendar's order.
    fn days(&self) -> Vec<(&'static str, bool)> {
        let ticked = [
            &self.monday,
            &self.tuesday,
            &self.wednesday,
            &self.thursday,
            &self.friday,
            &self.saturday,
            &self.sunday,
        ];
        WEEKDAYS
            .iter()
            .zip(ticked)
            .map(|(day, on)| (*day, on.is_some()))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "settings_calendars.html")]
struct CalendarsPage {
    chrome: Chrome,
    calendars: Vec<CalendarLine>,
    form: CalendarForm,
    days: Vec<(&'static str, bool)>,
    /// Which field of the add form is wrong, and why.
    error: Option<(String, String)>,
    /// The calendar whose holiday form was refused, and why.
    holiday_error: Option<(Uuid, String)>,
}

impl CalendarsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

fn hours_of(hours: &BusinessHours) -> String {
    match hours {
        BusinessHours::AlwaysOpen => "open around the clock".to_string(),
        BusinessHours::Weekly { days } => {
            let open: Vec<String> = WEEKDAYS
                .iter()
                .zip(days.iter())
                .filter(|(_, intervals)| !intervals.is_empty())
                .map(|(day, intervals)| {
                    let times: Vec<String> = intervals
                        .iter()
                        .map(|i| format!("{}–{}", i.start.format("%H:%M"), i.end.format("%H:%M")))
                        .collect();
                    format!("{day} {}", times.join(", "))
                })
                .collect();
            if open.is_empty() {
                "never open".to_string()
            } else {
                open.join("; ")
            }
        }
    }
}

async fn calendars_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: CalendarForm,
    error: Option<(String, String)>,
    holiday_error: Option<(Uuid, String)>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let mut authors = ChangeAuthors::default();
    let mut calendars = Vec::new();
    for saved in config::list::<SlaCalendar>(app, caller).await? {
        let changes = config::history::<SlaCalendar>(app, caller, saved.id).await?;
        let calendar = &saved.definition.calendar;
        calendars.push(CalendarLine {
            id: saved.id,
            name: saved.definition.name.clone(),
            version: saved.version,
            timezone: calendar.timezone.name().to_string(),
            hours: hours_of(&calendar.hours),
            holidays: calendar
                .holidays
                .iter()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
            history: authors.lines(app, changes).await?,
        });
    }
    let page = CalendarsPage {
        chrome: visitor.chrome(app, false)?,
        calendars,
        days: form.days(),
        form,
        error,
        holiday_error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn calendar_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            calendars_page(&app, &visitor, CalendarForm::fresh(), None, None).await
        }
        .await,
    )
}

/// Dates typed one per line (commas and spaces also separate them).
fn holidays(field: &str, typed: &str) -> Result<Vec<NaiveDate>, (String, String)> {
    typed
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                (
                    field.to_string(),
                    format!("{} is not a date such as 2026-12-25.", d.trim()),
                )
            })
        })
        .collect()
}

/// The calendar the form describes.
fn spec(form: &CalendarForm) -> Result<CalendarSpec, (String, String)> {
    if form.name.trim().is_empty() {
        return Err(("name".into(), "Enter a name.".into()));
    }
    let always_open = form.always_open.is_some();
    let hours = form
        .days()
        .into_iter()
        .filter(|(_, open)| *open && !always_open)
        .map(|(day, _)| {
            let interval = IntervalDocument {
                start: form.opens.trim().to_string(),
                end: form.closes.trim().to_string(),
            };
            (day.to_string(), vec![interval])
        })
        .collect();
    let document = CalendarDocument {
        timezone: form.timezone.trim().to_string(),
        always_open,
        hours,
        holidays: holidays("holidays", &form.holidays)?.into_iter().collect(),
    };
    let calendar = document.calendar().map_err(|e| {
        // The document names an interval's field; the form has one pair of times for all days.
        let field = if e.field.starts_with("hours") {
            "opens".to_string()
        } else {
            e.field
        };
        (field, e.reason)
    })?;
    Ok(CalendarSpec {
        name: form.name.trim().to_string(),
        calendar,
    })
}

/// Adds a calendar; a field that is wrong is named beside it, and nothing typed is lost.
#[poem::handler]
pub async fn add_calendar(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<CalendarForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let spec = match spec(&form) {
                Ok(spec) => spec,
                Err(error) => {
                    return calendars_page(&app, &visitor, form, Some(error), None).await;
                }
            };
            match config::create::<SlaCalendar>(&app, visitor.caller(), &origin, spec).await {
                Ok(_) => Ok(see_other("/settings/calendars")),
                Err(AppError::Invalid { field, reason }) => {
                    calendars_page(&app, &visitor, form, Some((field, reason)), None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct HolidayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    date: String,
    /// The calendar version the page showed: a change made since is not overwritten.
    #[serde(default)]
    version: Option<u32>,
}

/// Adds a holiday to a calendar: a new version of it.
#[poem::handler]
pub async fn add_holiday(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<HolidayForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let refused = |reason: String| Some((id, reason));
            let fresh = CalendarForm::fresh;
            let date = match holidays("date", &form.date) {
                Ok(dates) if dates.len() == 1 => dates[0],
                Ok(_) => {
                    let why = refused("Enter one date, such as 2026-12-25.".to_string());
                    return calendars_page(&app, &visitor, fresh(), None, why).await;
                }
                Err((_, reason)) => {
                    return calendars_page(&app, &visitor, fresh(), None, refused(reason)).await;
                }
            };
            let stale = || {
                refused(
                    "Someone changed this calendar since you opened the page; check it and add \
                     the holiday again."
                        .to_string(),
                )
            };
            let current = config::get::<SlaCalendar>(&app, visitor.caller(), id).await?;
            if form
                .version
                .is_some_and(|shown| shown != current.item.version)
            {
                return calendars_page(&app, &visitor, fresh(), None, stale()).await;
            }
            let mut spec = current.item.definition;
            spec.calendar.holidays.insert(date);
            // Exactly the version just read: a change in between is refused, not overwritten.
            let expected = Some(current.version);
            match config::update::<SlaCalendar>(&app, visitor.caller(), &origin, id, expected, spec)
                .await
            {
                Ok(_) => Ok(see_other("/settings/calendars")),
                Err(AppError::VersionMismatch { .. }) => {
                    calendars_page(&app, &visitor, fresh(), None, stale()).await
                }
                Err(AppError::Invalid { reason, .. }) => {
                    calendars_page(&app, &visitor, fresh(), None, refused(reason)).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_makes_a_calendar_open_on_the_days_ticked() {
        let form = CalendarForm {
            name: "Berlin office".into(),
            timezone: "Europe/Berlin".into(),
            holidays: "2026-12-25\n2026-12-26".into(),
            ..CalendarForm::fresh()
        };
        let Ok(spec) = spec(&form) else {
            panic!("the form is a calendar");
        };
        assert_eq!(spec.calendar.holidays.len(), 2);
        assert_eq!(
            hours_of(&spec.calendar.hours),
            "monday 09:00–17:00; tuesday 09:00–17:00; wednesday 09:00–17:00; \
             thursday 09:00–17:00; friday 09:00–17:00"
        );
    }

    #[test]
    fn a_wrong_zone_or_date_is_named_beside_its_field() {
        let zone = CalendarForm {
            name: "x".into(),
            timezone: "Mars/Olympus".into(),
            ..CalendarForm::fresh()
        };
        assert_eq!(spec(&zone).err().map(|e| e.0), Some("timezone".to_string()));
        let date = CalendarForm {
            name: "x".into(),
            holidays: "25.12.2026".into(),
            ..CalendarForm::fresh()
        };
        assert_eq!(spec(&date).err().map(|e| e.0), Some("holidays".to_string()));
    }
}
