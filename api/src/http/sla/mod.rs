//! `/api/sla/…` and `/api/escalation-rules`: SLA policies, business calendars and escalation
//! rules — one shape for the three (`app::sla::config`) — and what the clocks say.

pub mod calendars;
pub mod clocks;
pub mod policies;
pub mod rules;

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;

use crate::app::sla::config::{Saved, Written};
use crate::http::etag;
use crate::http::principal::consistency_token;

/// A configuration item as a write or a read of one left it.
#[derive(ApiResponse)]
pub enum ConfigSaved<T: ToJSON> {
    /// Created, at `Location`.
    #[oai(status = 201)]
    Created(
        Json<T>,
        #[oai(header = "Location")] String,
        /// The item's version in the log: send it back in `If-Match`.
        #[oai(header = "ETag")]
        String,
        /// Send it back on a read through another server to see this write.
        #[oai(header = "X-Consistency-Token")]
        Option<String>,
    ),
    /// As it is now.
    #[oai(status = 200)]
    Ok(
        Json<T>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

/// Whether a write made its item, and so where the item is now found.
#[derive(Debug, Clone, Copy)]
pub enum Made {
    /// Created under this collection (`/api/sla/policies`): `Location` is the item in it.
    Under(&'static str),
    /// A new version of an item that was there.
    Changed,
}

impl<T: ToJSON> ConfigSaved<T> {
    /// The response for `written`, its item shown as `T`.
    pub fn of<D>(made: Made, written: Written<D>) -> Self
    where
        T: From<Saved<D>>,
    {
        let (tag, token) = (etag(written.version), consistency_token(written.committed));
        let id = written.item.id;
        let body = Json(T::from(written.item));
        match made {
            Made::Under(collection) => {
                ConfigSaved::Created(body, format!("{collection}/{id}"), tag, token)
            }
            Made::Changed => ConfigSaved::Ok(body, tag, token),
        }
    }

    /// [`ConfigSaved::of`], with `finish` adding what the write response says beyond the item.
    pub fn of_with<D>(made: Made, written: Written<D>, finish: impl FnOnce(&mut T)) -> Self
    where
        T: From<Saved<D>>,
    {
        let mut saved = Self::of(made, written);
        match &mut saved {
            ConfigSaved::Created(body, ..) | ConfigSaved::Ok(body, ..) => finish(&mut body.0),
        }
        saved
    }
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted. Send the token back on a read through another server to see the deletion.
    #[oai(status = 204)]
    NoContent(#[oai(header = "X-Consistency-Token")] Option<String>),
}
