//! Decoding the wire text read models store into the domain's enums.

/// A nullable text column, for `#[sqlx(try_from = "OptionalText")]` on an `Option` of a domain
/// enum (a `TryFrom<Option<String>>` for `Option<T>` cannot be written outside the standard
/// library).
#[derive(Debug, sqlx::Type)]
#[sqlx(transparent)]
pub struct OptionalText(pub Option<String>);

impl<T: TryFrom<String>> TryFrom<OptionalText> for Option<T> {
    type Error = T::Error;

    fn try_from(text: OptionalText) -> Result<Self, Self::Error> {
        text.0.map(T::try_from).transpose()
    }
}
