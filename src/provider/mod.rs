//! Model providers configured per workspace: where to call (base URL, models), the key to
//! call with (stored encrypted, never returned) and the token quota.

pub mod service;
