//! Who is calling and what they may do: credentials, tokens, password hashing, login rate
//! limits, and the one place that answers "may this actor do this in this workspace".

pub mod actor;
pub mod password;
pub mod permissions;
pub mod rate_limit;
pub mod tokens;

pub use actor::{Actor, ClientInfo, Credentials};
pub use permissions::{Action, Role};
