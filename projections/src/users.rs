//! The account read model: `users_view`.

use chrono::{DateTime, Utc};
use docket_domain::Role;
use docket_domain::user::UserEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::fold::{self, Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub active: bool,
    /// A service account (no password, acts through API keys).
    pub service: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Folds one event into an account row; exhaustive over the user events.
pub fn fold(
    row: &mut Option<UserRow>,
    user_id: Uuid,
    sequence: i64,
    event: UserEvent,
) -> Result<(), String> {
    if row
        .as_ref()
        .is_some_and(|existing| sequence <= existing.version)
    {
        return Ok(());
    }
    let occurred_at = event.occurred_at();
    let Some(user) = row.as_mut() else {
        let UserEvent::UserRegistered {
            email,
            full_name,
            role,
            service,
            ..
        } = event
        else {
            return Err(format!("{} before UserRegistered", event.name()));
        };
        *row = Some(UserRow {
            id: user_id,
            email: email.as_str().to_string(),
            full_name: full_name.into_string(),
            role,
            active: true,
            service,
            created_at: occurred_at,
            updated_at: occurred_at,
            version: sequence,
        });
        return Ok(());
    };
    match event {
        UserEvent::UserRegistered { .. } => {
            return Err("UserRegistered for a user that already exists".into());
        }
        UserEvent::UserProfileUpdated {
            full_name, email, ..
        } => {
            if let Some(full_name) = full_name {
                user.full_name = full_name.into_string();
            }
            if let Some(email) = email {
                user.email = email.as_str().to_string();
            }
        }
        UserEvent::UserRoleChanged { to, .. } => user.role = to,
        UserEvent::UserDeactivated { .. } => user.active = false,
        UserEvent::UserReactivated { .. } => user.active = true,
        // Read from the account's log where they are shown.
        UserEvent::UserPasswordChanged { .. } | UserEvent::NotificationPreferencesSet { .. } => {}
    }
    user.updated_at = occurred_at;
    user.version = sequence;
    Ok(())
}

pub fn decode(event: &RecordedEvent) -> Result<UserEvent, ProjectionError> {
    fold::decode(event)
}

impl VersionedRow for UserRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// The projector for `users_view`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersProjection;

const USER_COLUMNS: &str =
    "id, email, full_name, role, active, service, created_at, updated_at, version";

impl Projection for UsersProjection {
    const NAME: &'static str = "users";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["user"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["users_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<UserEvent>::new(events)?;
        let existing: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users_view WHERE id = ANY($1)"
        ))
        .bind(decoded.ids())
        .fetch_all(&mut *conn)
        .await?;
        let (to_write, _): (Vec<UserRow>, Vec<()>) =
            fold_batch(existing, decoded, |row, id, sequence, event| {
                fold(row, id, sequence, event).map(|()| None)
            })?;
        for chunk in to_write.chunks(1_000) {
            let mut query: QueryBuilder<Postgres> =
                QueryBuilder::new(format!("INSERT INTO users_view ({USER_COLUMNS}) "));
            query.push_values(chunk.iter(), |mut b, row| {
                b.push_bind(row.id)
                    .push_bind(&row.email)
                    .push_bind(&row.full_name)
                    .push_bind(row.role.as_str())
                    .push_bind(row.active)
                    .push_bind(row.service)
                    .push_bind(row.created_at)
                    .push_bind(row.updated_at)
                    .push_bind(row.version);
            });
            query.push(
                " ON CONFLICT (id) DO UPDATE SET
                    email = EXCLUDED.email, full_name = EXCLUDED.full_name, role = EXCLUDED.role,
                    active = EXCLUDED.active, updated_at = EXCLUDED.updated_at,
                    version = EXCLUDED.version
                  WHERE users_view.version < EXCLUDED.version",
            );
            query.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users_view WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Only service accounts (`true`) or only people (`false`).
    pub service: Option<bool>,
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
}

pub async fn list(
    pool: &sqlx::PgPool,
    filter: &UserFilter,
) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
    let push_filters = |query: &mut QueryBuilder<'_, Postgres>| {
        query.push(" WHERE TRUE");
        if let Some(role) = &filter.role {
            query.push(" AND role = ").push_bind(role.as_str());
        }
        if let Some(active) = filter.active {
            query.push(" AND active = ").push_bind(active);
        }
        if let Some(service) = filter.service {
            query.push(" AND service = ").push_bind(service);
        }
    };
    let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT count(*) FROM users_view");
    push_filters(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {USER_COLUMNS} FROM users_view"));
    push_filters(&mut query);
    query
        .push(" ORDER BY created_at, id LIMIT ")
        .push_bind(filter.page_size)
        .push(" OFFSET ")
        .push_bind((filter.page.max(1) - 1).saturating_mul(filter.page_size));
    let items = query.build_query_as().fetch_all(pool).await?;
    Ok((items, total))
}
