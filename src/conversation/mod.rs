//! Conversations of end users with applications: sending messages (the chat pipeline's
//! front; the reply is produced by the engine), stopping replies, feedback, annotations,
//! renaming and deleting.

pub mod annotations;
pub mod end_users;
pub mod feedback;
pub mod lookup;
pub mod send;
pub mod service;
