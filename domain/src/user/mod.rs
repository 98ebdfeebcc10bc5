//! The user aggregate: an account and what it may do.
//!
//! Secrets never enter this aggregate's events (DESIGN.md decision 10): the password hash lives
//! in an ordinary table and the log only says that the password changed, by whom and when.

mod aggregate;

#[cfg(test)]
mod tests;

pub use aggregate::{
    ChangeUserRole, RegisterUser, Registration, SetUserActive, UpdateUserProfile, User,
    UserCommand, UserError, UserEvent, UserState,
};
