//! Prompt templates: reusable prompts with numbered versions, one current.

pub mod service;
