//! Core types of Tend shared by every other crate: records, commands, effects, journal
//! events and actors. This crate does no IO and depends on nothing else of Tend.

mod actor;
mod command;
mod journal;
mod record;

pub use actor::{Actor, Role, UnknownRole};
pub use command::{Command, Effect, ProposedEffect, Recommendation};
pub use journal::{JournalEntry, JournalEvent};
pub use record::{CORE_COLUMNS, Fields, Record};
