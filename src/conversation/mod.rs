//! Conversations of end users with applications: renaming and deleting them (the chat
//! pipeline that fills them comes with the execution engine).

pub mod annotations;
pub mod lookup;
pub mod service;
