//! Plugins: a catalogue described by manifest files shipped with the server, installed,
//! configured and switched on or off per workspace; `tools` runs the shipped plugins' tools.

pub mod catalogue;
pub mod config;
pub mod installations;

pub use catalogue::{ConfigField, FieldType, Manifest};
pub mod tools;
