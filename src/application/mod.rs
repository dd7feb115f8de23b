//! Applications (what end users chat with) and the API keys their frontends call with.

pub mod api_keys;
pub mod end_user_tokens;
pub mod service;
