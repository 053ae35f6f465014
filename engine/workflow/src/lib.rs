//! Process definitions and the state machine.
//!
//! - [`model`]: the YAML model of a definition; [`calendar`]: business-hours calendars;
//!   [`links`]: the types of links between records; [`cmdb`]: CI classes and relationship
//!   types.
//! - [`load`]: loading a definitions directory and validating all of it at once, with
//!   file, line and column for every error; [`files`]: the files of a set as text, which
//!   servers store per version.
//! - [`engine`]: the pure state machine, `command + record + definition -> outcome`;
//!   [`migrate`]: whether a record fits another version of its definition.
//! - [`rules`]: the trait through which the state machine runs rules.

pub mod alerts;
pub mod approval;
pub mod calendar;
pub mod catalog;
pub mod cmdb;
mod diagnostic;
pub mod engine;
pub mod files;
pub mod graph;
pub mod jobs;
pub mod links;
pub mod load;
pub mod mailbox;
pub mod migrate;
pub mod model;
pub mod notify;
mod prune;
mod rejection;
pub mod rules;
pub mod schedule;
pub mod sla;
mod validate;
pub mod values;
mod yaml_index;

pub use diagnostic::{Diagnostic, LoadError};
pub use engine::{
    ApprovalPlan, Context, DEFAULT_FOLLOW_UP_FIELD, FollowUp, Outcome, TimerPlan,
    available_transitions, check_entitlement, execute, execute_approved, path_between, plan_timers,
    react_to_linked,
};
pub use files::DefinitionFiles;
pub use links::{FOLLOW_UP_LINK, LinkType, LinkTypeFile};
pub use load::{DefinitionSet, load_dir, parse_yaml};
pub use migrate::misfits;
pub use model::{
    ApprovalDef, ApprovalPolicy, DeadlineAction, Definition, FieldDef, FieldType, GroupDef,
    ReplyPolicy, Span, StateDef, TransitionDef,
};
pub use rejection::Rejection;
pub use rules::{
    CompileError, FieldAccess, FieldUse, Hook, LinkedChange, LinkedRecord, NoRules, RuleCheckError,
    RuleFailure, RuleInput, RuleRunner,
};
pub use validate::RESERVED_NAMES;
