//! Accounts of tenant users: registration, login, sessions (rotating refresh tokens),
//! logout and password reset. Plain functions taking the app, a connection and the caller.

pub mod accounts;
pub mod password_reset;
pub mod sessions;

pub use accounts::{login, register};
pub use sessions::{Session, logout, refresh};
