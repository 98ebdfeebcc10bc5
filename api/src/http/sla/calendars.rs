//! `/api/sla/calendars`: the business hours SLA clocks count in.

use chrono::NaiveDate;
use docket_domain::sla::BusinessHours;
use docket_domain::sla::config::SlaCalendar;
use docket_domain::sla::document::{CalendarDocument, IntervalDocument, WEEKDAYS};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigSaved, Made};
use crate::app::sla::config::{self, CalendarSpec, Saved};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, if_match, invalid};

/// `HH:MM` local times; an interval whose end is not after its start runs past midnight.
#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct IntervalDto {
    #[oai(validator(max_length = 8))]
    pub start: String,
    #[oai(validator(max_length = 8))]
    pub end: String,
}

#[derive(Debug, Clone, Default, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct WeekDto {
    #[serde(default)]
    pub monday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub tuesday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub wednesday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub thursday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub friday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub saturday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub sunday: Option<Vec<IntervalDto>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CalendarRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    #[oai(validator(max_length = 64))]
    pub timezone: String,
    /// Open around the clock (the week and holidays are then ignored).
    #[serde(default)]
    pub always_open: Option<bool>,
    #[serde(default)]
    pub hours: Option<WeekDto>,
    /// Local dates (`YYYY-MM-DD`) on which no interval starts.
    #[serde(default)]
    pub holidays: Option<Vec<NaiveDate>>,
}

#[derive(Debug, Clone, Object)]
pub struct CalendarDto {
    pub id: Uuid,
    pub version: i64,
    pub name: String,
    pub timezone: String,
    pub always_open: bool,
    pub hours: WeekDto,
    pub holidays: Vec<NaiveDate>,
}

impl WeekDto {
    fn days(self) -> [Option<Vec<IntervalDto>>; 7] {
        [
            self.monday,
            self.tuesday,
            self.wednesday,
            self.thursday,
            self.friday,
            self.saturday,
            self.sunday,
        ]
    }
}

impl CalendarRequest {
    /// What was asked, in the domain's words (which parse the zone and the times).
    fn spec(self) -> Result<CalendarSpec, ApiError> {
        let hours = self
            .hours
            .unwrap_or_default()
            .days()
            .into_iter()
            .zip(WEEKDAYS)
            .filter_map(|(intervals, day)| {
                let intervals = intervals?
                    .into_iter()
                    .map(|i| IntervalDocument {
                        start: i.start,
                        end: i.end,
                    })
                    .collect();
                Some((day.to_string(), intervals))
            })
            .collect();
        let document = CalendarDocument {
            timezone: self.timezone,
            always_open: self.always_open.unwrap_or(false),
            hours,
            holidays: self.holidays.unwrap_or_default().into_iter().collect(),
        };
        Ok(CalendarSpec {
            name: self.name,
            calendar: document.calendar().map_err(invalid)?,
        })
    }
}

impl From<Saved<CalendarSpec>> for CalendarDto {
    fn from(saved: Saved<CalendarSpec>) -> Self {
        let CalendarSpec { name, calendar } = saved.definition;
        let mut week = WeekDto::default();
        if let BusinessHours::Weekly { days } = &calendar.hours {
            let render = |day: usize| {
                Some(
                    days[day]
                        .iter()
                        .map(|i| IntervalDto {
                            start: i.start.format("%H:%M").to_string(),
                            end: i.end.format("%H:%M").to_string(),
                        })
                        .collect(),
                )
            };
            week = WeekDto {
                monday: render(0),
                tuesday: render(1),
                wednesday: render(2),
                thursday: render(3),
                friday: render(4),
                saturday: render(5),
                sunday: render(6),
            };
        }
        CalendarDto {
            id: saved.id,
            version: i64::from(saved.version),
            name,
            timezone: calendar.timezone.name().to_string(),
            always_open: calendar.hours == BusinessHours::AlwaysOpen,
            hours: week,
            holidays: calendar
                .holidays
                .iter()
                .copied()
                .collect::<Vec<NaiveDate>>(),
        }
    }
}

#[derive(Default)]
pub struct CalendarsApi;

#[OpenApi(tag = "ApiTags::Sla")]
impl CalendarsApi {
    /// Business calendars (staff).
    #[oai(
        path = "/api/sla/calendars",
        method = "get",
        operation_id = "list_sla_calendars"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<CalendarDto>>, ApiError> {
        let calendars = config::list::<SlaCalendar>(&app, &auth.0).await?;
        Ok(Json(Page::of(calendars, Paging::new(page.0, page_size.0))))
    }

    /// Create a business calendar (managers, admins).
    #[oai(
        path = "/api/sla/calendars",
        method = "post",
        operation_id = "create_sla_calendar"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<CalendarRequest>,
    ) -> Result<ConfigSaved<CalendarDto>, ApiError> {
        let written = config::create::<SlaCalendar>(&app, &auth.0, &origin, body.0.spec()?).await?;
        Ok(ConfigSaved::of(Made::Under("/api/sla/calendars"), written))
    }

    /// One calendar (staff).
    #[oai(
        path = "/api/sla/calendars/:id",
        method = "get",
        operation_id = "get_sla_calendar"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<ConfigSaved<CalendarDto>, ApiError> {
        let written = config::get::<SlaCalendar>(&app, &auth.0, id.0).await?;
        Ok(ConfigSaved::of(Made::Changed, written))
    }

    /// Replace a calendar: a new version (managers, admins).
    #[oai(
        path = "/api/sla/calendars/:id",
        method = "put",
        operation_id = "update_sla_calendar"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<CalendarRequest>,
    ) -> Result<ConfigSaved<CalendarDto>, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let spec = body.0.spec()?;
        let written =
            config::update::<SlaCalendar>(&app, &auth.0, &origin, id.0, expected, spec).await?;
        Ok(ConfigSaved::of(Made::Changed, written))
    }
}
