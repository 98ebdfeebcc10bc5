//! A JSON request body that documents its schema through poem-openapi but parses with serde, so
//! every error names the field at fault (`tags[2]`, `priority`) and the right status:
//! 400 for text that is not JSON, 413 for too much of it, 422 for JSON of the wrong shape.

use poem::web::RequestBody;
use poem::{Request, error::ReadBodyError};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde::de::DeserializeOwned;

use crate::http::problem::ApiError;

/// The largest body the server reads; installed as request data at start-up.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let limit = request.data::<BodyLimit>().map_or(1024 * 1024, |l| l.0);
        let bytes = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|error| match error {
                ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge { limit },
                other => ApiError::MalformedBody {
                    detail: other.to_string(),
                },
            })?;
        Ok(JsonBody(parse_documented(&bytes)?))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + DeserializeOwned + Send);

/// [`parse`], then the limits the OpenAPI document states (`maxLength`, `maximum`, `maxItems`…)
/// as poem-openapi checks them, so the server accepts exactly what its contract documents.
/// serde goes first because it names the JSON path of a problem; poem-openapi names the field.
pub fn parse_documented<T: DeserializeOwned + ParseFromJSON>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = json_value(bytes)?;
    let parsed: T = serde_path_to_error::deserialize(&value).map_err(describe)?;
    T::parse_from_json(Some(value.clone())).map_err(|error| {
        let message = error.into_message();
        let field = failing_field(&value, &message);
        ApiError::Validation {
            field,
            reason: message,
        }
    })?;
    Ok(parsed)
}

/// The JSON path of the field a poem-openapi validator refused. Its message names only the
/// innermost field and the validator ("field `resolution` verification failed. minimum(1, …)"),
/// so the path is found by looking for fields of that name whose value breaks that limit.
fn failing_field(value: &serde_json::Value, message: &str) -> String {
    let Some((name, validator)) = message
        .split_once("field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, rest)| (name, rest.split_once("failed. ").map_or("", |(_, v)| v)))
    else {
        return "body".to_string();
    };
    let mut found = Vec::new();
    paths_of(value, name, String::new(), &mut found);
    let breaking: Vec<&(String, &serde_json::Value)> =
        found.iter().filter(|(_, v)| breaks(v, validator)).collect();
    match breaking.as_slice() {
        [(path, _)] => path.clone(),
        _ => name.to_string(),
    }
}

fn paths_of<'v>(
    value: &'v serde_json::Value,
    name: &str,
    prefix: String,
    found: &mut Vec<(String, &'v serde_json::Value)>,
) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        serde_json::Value::Object(fields) => {
            for (key, child) in fields {
                if key == name {
                    found.push((join(key), child));
                }
                paths_of(child, name, join(key), found);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                paths_of(child, name, format!("{prefix}[{index}]"), found);
            }
        }
        _ => {}
    }
}

/// Whether `value` breaks the limit a poem-openapi validator describes as `validator`
/// (`maxLength(200)`, `minimum(1, exclusive: false)`, …). Unknown validators count as broken.
fn breaks(value: &serde_json::Value, validator: &str) -> bool {
    let Some((kind, rest)) = validator.split_once('(') else {
        return true;
    };
    let limit: f64 = match rest
        .split([',', ')'])
        .next()
        .and_then(|n| n.trim().parse().ok())
    {
        Some(limit) => limit,
        None => return true,
    };
    let length = match value {
        serde_json::Value::String(text) => Some(text.chars().count() as f64),
        serde_json::Value::Array(items) => Some(items.len() as f64),
        _ => None,
    };
    match kind {
        "maxLength" | "maxItems" => length.is_some_and(|l| l > limit),
        "minLength" | "minItems" => length.is_some_and(|l| l < limit),
        "maximum" => value.as_f64().is_some_and(|n| n > limit),
        "minimum" => value.as_f64().is_some_and(|n| n < limit),
        _ => true,
    }
}

/// Parses `bytes` as `T`, reporting the JSON path of the first problem. Syntax is checked
/// first (400), shape second (422), so the two can never be confused.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(json_value(bytes)?).map_err(describe)
}

/// The body as JSON, or a 400 when it is not JSON at all.
fn json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedBody {
        detail: e.to_string(),
    })
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let message = strip_position(&error.into_inner().to_string());
    // "missing field `x`" is reported at the parent object; name the missing child.
    let field = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(|name| {
            if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        })
        .unwrap_or_else(|| {
            if path == "." {
                "body".to_string()
            } else {
                path
            }
        });
    ApiError::Validation {
        field,
        reason: message,
    }
}

/// serde_json appends " at line 1 column 17"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        subject: String,
        priority: Level,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Level {
        High,
    }

    fn field_of(body: &str) -> Option<(u16, Option<String>)> {
        parse::<Sample>(body.as_bytes())
            .err()
            .map(|e| (e.status().as_u16(), e.problem().field))
    }

    #[test]
    fn text_that_is_not_json_is_a_400() {
        assert_eq!(field_of("{\"subject\": "), Some((400, None)));
        assert_eq!(field_of("not json"), Some((400, None)));
        assert_eq!(field_of("{} trailing"), Some((400, None)));
    }

    #[test]
    fn the_wrong_shape_is_a_422_naming_the_field() {
        assert_eq!(
            field_of(r#"{"subject": 5, "priority": "high"}"#),
            Some((422, Some("subject".into())))
        );
        assert_eq!(
            field_of(r#"{"subject": "s", "priority": "urgent"}"#),
            Some((422, Some("priority".into())))
        );
        assert_eq!(
            field_of(r#"{"subject": "s", "priority": "high", "tags": ["a", 7]}"#),
            Some((422, Some("tags[1]".into())))
        );
        assert_eq!(
            field_of(r#"{"priority": "high"}"#),
            Some((422, Some("subject".into())))
        );
        assert_eq!(
            field_of(r#"{"subject": "s", "priority": "high", "priorty": 1}"#),
            Some((422, Some("priorty".into())))
        );
    }

    #[test]
    fn a_nesting_bomb_is_refused_as_malformed() {
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(field_of(&bomb).map(|(status, _)| status), Some(400));
    }

    #[test]
    fn a_valid_body_parses() {
        let sample = parse::<Sample>(br#"{"subject": "s", "priority": "high"}"#);
        assert!(sample.is_ok());
    }

    #[test]
    fn a_broken_documented_limit_is_named_by_its_json_path() {
        let body = serde_json::json!({
            "targets": {
                "low": {"response": 5, "resolution": 0},
                "high": {"response": 5, "resolution": 9}
            },
            "tags": ["ok", "far too long"]
        });
        let message = "failed to parse \"Targets\": field `resolution` verification failed. \
                       minimum(1, exclusive: false)";
        assert_eq!(failing_field(&body, message), "targets.low.resolution");
        let message = "field `tags` verification failed. maxItems(1)";
        assert_eq!(failing_field(&body, message), "tags");
        // Two fields break it: the name alone is all that can be said.
        let message = "field `response` verification failed. maximum(4, exclusive: false)";
        assert_eq!(failing_field(&body, message), "response");
        assert_eq!(failing_field(&body, "something else"), "body");
    }
}
