//! The API rules see: the variables of a run and the host functions.
//!
//! Variables, all constants:
//! - `record`: a map of every field of the record plus `number`, `process`, `state`,
//!   `title`, `description`, and `created_at`, `updated_at` and `state_changed_at` as
//!   RFC 3339 text in UTC.
//! - `previous`: the same map for the record before the command, or `()` on create.
//! - `actor`: `#{ name, roles }`, with roles as an array of strings.
//! - `hook`: the hook the rule runs for, such as `"on_create"`, `"on_transition"`,
//!   `"guard"` or `"on_email"`.
//! - `transition`: the transition being taken, or `()`.
//! - `links`: the records linked to this one, an array of
//!   `#{ link_type, outgoing, number, process, state, open }`.
//! - `linked`: in `on_linked` rules, the linked record that took a transition, as
//!   `#{ link_type, outgoing, number, process, state, open, transition, from }`; else `()`.
//! - `now`: the time of the command, timer or scheduled run, as RFC 3339 text in UTC.
//! - `email`: in `on_email` rules, the message as `#{ from, from_name, to, cc, subject,
//!   message_id, mailbox, text }` (`to` and `cc` are arrays of addresses); else `()`.
//!
//! Effects, each with a reason that the journal shows the technician:
//! `set_field(name, value, reason)`, `assign_group(group, reason)`,
//! `assign_to(user, reason)`, `recommend(action, params, reason)`, `note(text, reason)`,
//! in a transition guard `deny(message)`, and in an approval rule
//! `approver("user:NAME" | "group:NAME" | "board:NAME", reason)`.
//! Follow-ons, carried out after the command is written: `take_transition(name, reason)`,
//! `link_to(link_type, number, reason)`,
//! `open_record(process, #{ title, description, fields, link_type }, reason)` and
//! `run_action("plugin/action", params, reason)`.
//!
//! Text helpers: `lower(text)`, `words(text)`, `text_has_any(text, words)`,
//! `first_match(text, words)`, `find_path(text)` and `matches(value, pattern)`.
//! Time helper: `hours_between(from, to)`, the hours from one RFC 3339 instant to another
//! as a float, such as `hours_between(record.state_changed_at, now)`.

use chrono::{DateTime, SecondsFormat, Utc};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope};
use serde_json::Value;
use tend_domain::{Effect, Record};
use tend_workflow::RuleInput;

use crate::context;
use crate::convert::{dynamic_to_json, json_to_dynamic};

/// Names of the variables every run defines, in the order they are pushed.
pub(crate) const VARIABLES: [&str; 11] = [
    "record",
    "previous",
    "actor",
    "hook",
    "transition",
    "links",
    "linked",
    "now",
    "email",
    "cmdb",
    "alert",
];

type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// Registers the host functions on the engine.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn("set_field", set_field);
    engine.register_fn("assign_group", assign_group);
    engine.register_fn("assign_to", assign_to);
    engine.register_fn("recommend", recommend);
    engine.register_fn("note", note);
    engine.register_fn("deny", deny);
    engine.register_fn("approver", approver);
    engine.register_fn("take_transition", take_transition);
    engine.register_fn("link_to", link_to);
    engine.register_fn("open_record", open_record);
    engine.register_fn("run_action", run_action);
    engine.register_fn("lower", |text: ImmutableString| text.to_lowercase());
    engine.register_fn("words", |text: ImmutableString| -> Array {
        words(&text).into_iter().map(Dynamic::from).collect()
    });
    engine.register_fn("text_has_any", text_has_any);
    engine.register_fn("matches", matches);
    engine.register_fn("first_match", first_match);
    engine.register_fn("hours_between", hours_between);
    engine.register_fn("find_path", |text: ImmutableString| -> Dynamic {
        find_path(&text).map_or(Dynamic::UNIT, Dynamic::from)
    });
}

/// Builds the scope a run starts with. Every run gets a new one, so nothing a script
/// assigns survives into the next run.
pub(crate) fn input_scope(input: &RuleInput<'_>) -> Result<Scope<'static>, String> {
    let record = record_map(input.record).map_err(|error| format!("record: {error}"))?;
    let previous = match input.previous {
        Some(previous) => {
            Dynamic::from_map(record_map(previous).map_err(|error| format!("previous: {error}"))?)
        }
        None => Dynamic::UNIT,
    };
    let mut actor = Map::new();
    actor.insert("name".into(), input.actor.name.as_str().into());
    let roles: Array = input
        .actor
        .roles
        .iter()
        .map(|role| Dynamic::from(role.as_str()))
        .collect();
    actor.insert("roles".into(), Dynamic::from_array(roles));
    let transition = input
        .transition
        .map_or(Dynamic::UNIT, |name| Dynamic::from(name.to_owned()));

    let mut scope = Scope::new();
    scope.push_constant_dynamic(VARIABLES[0], Dynamic::from_map(record));
    scope.push_constant_dynamic(VARIABLES[1], previous);
    scope.push_constant_dynamic(VARIABLES[2], Dynamic::from_map(actor));
    scope.push_constant_dynamic(VARIABLES[3], Dynamic::from(input.hook.as_str()));
    scope.push_constant_dynamic(VARIABLES[4], transition);
    let links = serde_json::to_value(input.links).map_err(|error| format!("links: {error}"))?;
    scope.push_constant_dynamic(
        VARIABLES[5],
        json_to_dynamic(&links).map_err(|error| format!("links: {error}"))?,
    );
    let linked = match input.linked {
        Some(change) => {
            let mut value =
                serde_json::to_value(&change.record).map_err(|error| format!("linked: {error}"))?;
            value["transition"] = Value::String(change.transition.clone());
            value["from"] = Value::String(change.from.clone());
            json_to_dynamic(&value).map_err(|error| format!("linked: {error}"))?
        }
        None => Dynamic::UNIT,
    };
    scope.push_constant_dynamic(VARIABLES[6], linked);
    scope.push_constant_dynamic(VARIABLES[7], Dynamic::from(instant(input.now)));
    let email = match input.email {
        Some(email) => json_to_dynamic(email).map_err(|error| format!("email: {error}"))?,
        None => Dynamic::UNIT,
    };
    scope.push_constant_dynamic(VARIABLES[8], email);
    let cmdb = match input.cmdb {
        Some(cmdb) => json_to_dynamic(cmdb).map_err(|error| format!("cmdb: {error}"))?,
        None => Dynamic::UNIT,
    };
    scope.push_constant_dynamic(VARIABLES[9], cmdb);
    let alert = match input.alert {
        Some(alert) => json_to_dynamic(alert).map_err(|error| format!("alert: {error}"))?,
        None => Dynamic::UNIT,
    };
    scope.push_constant_dynamic(VARIABLES[10], alert);
    Ok(scope)
}

/// Builds the scope used when compiling: the same names, as plain variables so that the
/// optimizer does not fold their placeholder values into the script.
pub(crate) fn compile_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    for name in VARIABLES {
        scope.push_dynamic(name, Dynamic::UNIT);
    }
    scope
}

fn record_map(record: &Record) -> Result<Map, String> {
    let mut map = Map::new();
    for (name, value) in &record.fields {
        let value = json_to_dynamic(value).map_err(|error| format!("field `{name}`: {error}"))?;
        map.insert(name.as_str().into(), value);
    }
    // The common columns win over a field of the same name.
    map.insert("number".into(), record.number.as_str().into());
    map.insert("process".into(), record.process.as_str().into());
    map.insert("state".into(), record.state.as_str().into());
    map.insert("title".into(), record.title.as_str().into());
    map.insert("description".into(), record.description.as_str().into());
    map.insert("created_at".into(), instant(record.created_at).into());
    map.insert("updated_at".into(), instant(record.updated_at).into());
    map.insert(
        "state_changed_at".into(),
        instant(record.state_changed_at).into(),
    );
    Ok(map)
}

/// Writes an instant as rules see it: RFC 3339 in UTC, to the second.
fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Returns the hours from `from` to `to`, negative when `to` is earlier. Both are RFC 3339
/// instants, as in `record.state_changed_at` and `now`.
fn hours_between(from: ImmutableString, to: ImmutableString) -> HostResult<f64> {
    let read = |name: &str, text: &str| {
        DateTime::parse_from_rfc3339(text).map_err(|error| {
            format!(
                "hours_between: `{name}` is `{text}`, which is not an RFC 3339 instant ({error}): pass a value such as record.state_changed_at, now or \"2027-01-04T09:00:00Z\""
            )
        })
    };
    let from = read("from", &from)?;
    let to = read("to", &to)?;
    Ok((to - from).num_milliseconds() as f64 / 3_600_000.0)
}

fn set_field(name: ImmutableString, value: Dynamic, reason: ImmutableString) -> HostResult<()> {
    let name = require_text("set_field", "field name", &name)?;
    let reason = require_text("set_field", "reason", &reason)?;
    let value =
        dynamic_to_json(&value).map_err(|error| format!("set_field(\"{name}\"): {error}"))?;
    let effect = Effect::SetField {
        field: name.to_owned(),
        value,
    };
    context::propose(reason, effect)
}

fn assign_group(group: ImmutableString, reason: ImmutableString) -> HostResult<()> {
    let group = require_text("assign_group", "group", &group)?;
    let reason = require_text("assign_group", "reason", &reason)?;
    let effect = Effect::SetField {
        field: "assignment_group".to_owned(),
        value: Value::String(group.to_owned()),
    };
    context::propose(reason, effect)
}

fn assign_to(user: ImmutableString, reason: ImmutableString) -> HostResult<()> {
    let user = require_text("assign_to", "user", &user)?;
    let reason = require_text("assign_to", "reason", &reason)?;
    let effect = Effect::SetField {
        field: "assignee".to_owned(),
        value: Value::String(user.to_owned()),
    };
    context::propose(reason, effect)
}

fn recommend(action: ImmutableString, params: Map, reason: ImmutableString) -> HostResult<()> {
    let action = require_text("recommend", "action", &action)?;
    let reason = require_text("recommend", "reason", &reason)?;
    let params = dynamic_to_json(&Dynamic::from_map(params))
        .map_err(|error| format!("recommend(\"{action}\") params: {error}"))?;
    let effect = Effect::Recommend {
        action: action.to_owned(),
        params,
    };
    context::propose(reason, effect)
}

fn note(text: ImmutableString, reason: ImmutableString) -> HostResult<()> {
    let text = require_text("note", "text", &text)?;
    let reason = require_text("note", "reason", &reason)?;
    let effect = Effect::Note {
        text: text.to_owned(),
    };
    context::propose(reason, effect)
}

/// Blocks the transition a guard checks. The message is shown to the user as it is, so it
/// doubles as the reason.
fn deny(message: ImmutableString) -> HostResult<()> {
    let message = require_text("deny", "message", &message)?;
    let effect = Effect::Deny {
        message: message.to_owned(),
    };
    context::propose(message, effect)
}

/// Names an approver of the transition an approval rule runs for.
fn approver(approver: ImmutableString, reason: ImmutableString) -> HostResult<()> {
    let approver = require_text("approver", "approver", &approver)?;
    let reason = require_text("approver", "reason", &reason)?;
    tend_workflow::approval::Approver::parse(approver)?;
    let effect = Effect::Approver {
        approver: approver.to_owned(),
    };
    context::propose(reason, effect)
}

/// Asks for a transition of the record once the command is written.
fn take_transition(name: ImmutableString, reason: ImmutableString) -> HostResult<()> {
    let name = require_text("take_transition", "transition name", &name)?;
    let reason = require_text("take_transition", "reason", &reason)?;
    let effect = Effect::Transition {
        name: name.to_owned(),
    };
    context::propose(reason, effect)
}

/// Asks for a link from the record to record `target` once the command is written.
fn link_to(
    link_type: ImmutableString,
    target: ImmutableString,
    reason: ImmutableString,
) -> HostResult<()> {
    let link_type = require_text("link_to", "link type", &link_type)?;
    let target = require_text("link_to", "target record number", &target)?;
    let reason = require_text("link_to", "reason", &reason)?;
    let effect = Effect::Link {
        link_type: link_type.to_owned(),
        target: target.to_owned(),
    };
    context::propose(reason, effect)
}

/// Asks for a new record of `process` once the command is written. `spec` holds `title`
/// (required), and optionally `description`, `fields` (a map) and `link_type`, the link
/// from the new record to this one.
fn open_record(process: ImmutableString, spec: Map, reason: ImmutableString) -> HostResult<()> {
    let process = require_text("open_record", "process", &process)?;
    let reason = require_text("open_record", "reason", &reason)?;
    let spec = dynamic_to_json(&Dynamic::from_map(spec))
        .map_err(|error| format!("open_record(\"{process}\"): {error}"))?;
    let text = |key: &str| spec.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(title) = text("title").filter(|t| !t.trim().is_empty()) else {
        return Err(format!(
            "open_record(\"{process}\"): the map needs a `title`, e.g. #{{ title: \"Replace disk\" }}"
        )
        .into());
    };
    let fields = match spec.get("fields") {
        None | Some(Value::Null) => tend_domain::Fields::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(format!(
                "open_record(\"{process}\"): `fields` must be a map of field values, not {other}"
            )
            .into());
        }
    };
    let effect = Effect::Open {
        process: process.to_owned(),
        title,
        description: text("description").unwrap_or_default(),
        fields,
        link_type: text("link_type"),
    };
    context::propose(reason, effect)
}

/// Asks for a run of plugin action `action` (`plugin/action`) with `params` once the
/// command is written; the definition must allow it under `automatic_actions`.
fn run_action(action: ImmutableString, params: Map, reason: ImmutableString) -> HostResult<()> {
    let action = require_text("run_action", "action", &action)?;
    let reason = require_text("run_action", "reason", &reason)?;
    if !action.contains('/') {
        return Err(format!(
            "run_action(\"{action}\"): name the action as plugin/action, such as \"script/disk_usage\""
        )
        .into());
    }
    let params = dynamic_to_json(&Dynamic::from_map(params))
        .map_err(|error| format!("run_action(\"{action}\") params: {error}"))?;
    let effect = Effect::RunAction {
        action: action.to_owned(),
        params,
    };
    context::propose(reason, effect)
}

/// Most compiled patterns kept per thread; the cache is emptied when it is full.
const MAX_CACHED_PATTERNS: usize = 256;

thread_local! {
    static PATTERNS: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Checks whether `value` matches the regular expression `pattern` (Rust `regex` syntax,
/// unanchored). Text matches when the pattern finds a match in it; an array matches when
/// one of its text elements does. Numbers, booleans, maps and `()` never match and are not
/// turned into text, so a rule on a field that is sometimes a number neither fails nor
/// matches by accident. An invalid pattern fails the rule with the pattern's error.
fn matches(value: Dynamic, pattern: ImmutableString) -> HostResult<bool> {
    let regex = PATTERNS.with(|cache| -> HostResult<regex::Regex> {
        let mut cache = cache.borrow_mut();
        if let Some(regex) = cache.get(pattern.as_str()) {
            return Ok(regex.clone());
        }
        let regex = regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|error| format!("matches: invalid pattern `{pattern}`: {error}"))?;
        if cache.len() >= MAX_CACHED_PATTERNS {
            cache.clear();
        }
        cache.insert(pattern.to_string(), regex.clone());
        Ok(regex)
    })?;
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return Ok(regex.is_match(&text));
    }
    if let Some(array) = value.read_lock::<Array>() {
        return Ok(array.iter().any(|element| {
            element
                .read_lock::<ImmutableString>()
                .is_some_and(|text| regex.is_match(&text))
        }));
    }
    Ok(false)
}

/// Rejects an empty or blank argument, because an effect without a name or a reason
/// cannot be applied or explained.
fn require_text<'a>(function: &str, argument: &str, value: &'a str) -> HostResult<&'a str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{function}: the {argument} must not be empty").into());
    }
    Ok(trimmed)
}

/// Splits text into lower-cased words: runs of letters and digits.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Checks whether `text` contains any entry of `list` as whole words, ignoring case. An entry
/// of several words, such as "access denied", matches those words in sequence.
fn text_has_any(text: ImmutableString, list: Array) -> HostResult<bool> {
    Ok(find_first("text_has_any", &text, &list)?.is_some())
}

/// Returns the first entry of `list`, in list order, that `text` contains as whole words,
/// or `()` when none does. Rules use it to name the matching word in a reason.
fn first_match(text: ImmutableString, list: Array) -> HostResult<Dynamic> {
    let found = find_first("first_match", &text, &list)?;
    Ok(found.cloned().unwrap_or(Dynamic::UNIT))
}

fn find_first<'a>(function: &str, text: &str, list: &'a Array) -> HostResult<Option<&'a Dynamic>> {
    let text_words = words(text);
    for (index, entry) in list.iter().enumerate() {
        let Ok(phrase) = entry.as_immutable_string_ref() else {
            return Err(format!(
                "{function}: the word list must hold strings, but item {index} is of type `{}`",
                entry.type_name()
            )
            .into());
        };
        let phrase = words(&phrase);
        if !phrase.is_empty() && contains_sequence(&text_words, &phrase) {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Returns the first word of `text` that looks like a file path (`/srv/share`,
/// `C:\data`, `\\server\share`, `~/notes`) or a file name with an extension
/// (`budget.xlsx`), without surrounding quotes, brackets or punctuation.
pub(crate) fn find_path(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|token| {
            token
                .trim_start_matches(|character: char| "\"'([<{".contains(character))
                .trim_end_matches(|character: char| "\"')]>},;:!?.".contains(character))
        })
        .find(|token| looks_like_path(token))
        .map(str::to_owned)
}

fn looks_like_path(token: &str) -> bool {
    let bytes = token.as_bytes();
    let drive = bytes.len() > 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && matches!(bytes[2], b'\\' | b'/');
    let rooted = token.len() > 1
        && (token.starts_with('/') || token.starts_with("~/") || token.starts_with("\\\\"));
    if drive || rooted {
        return true;
    }
    let file_name = token.rsplit(['/', '\\']).next().unwrap_or(token);
    match file_name.rsplit_once('.') {
        Some((stem, extension)) => {
            !stem.is_empty()
                && (2..=5).contains(&extension.len())
                && extension.starts_with(|character: char| character.is_ascii_alphabetic())
                && extension
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn contains_sequence(haystack: &[String], needle: &[String]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Array {
        values
            .iter()
            .map(|value| Dynamic::from(value.to_string()))
            .collect()
    }

    #[test]
    fn words_split_and_lower() {
        assert_eq!(
            words("VPN down; can't log-in!"),
            ["vpn", "down", "can", "t", "log", "in"]
        );
    }

    #[test]
    fn text_has_any_matches_whole_words() {
        let text = ImmutableString::from("Reports server is slow");
        assert!(text_has_any(text.clone(), strings(&["server"])).unwrap());
        assert!(!text_has_any(text.clone(), strings(&["port"])).unwrap());
        assert!(!text_has_any(text, strings(&["serve"])).unwrap());
    }

    #[test]
    fn text_has_any_ignores_case() {
        let text = ImmutableString::from("VPN drops");
        assert!(text_has_any(text, strings(&["vpn"])).unwrap());
        let text = ImmutableString::from("vpn drops");
        assert!(text_has_any(text, strings(&["VPN"])).unwrap());
    }

    #[test]
    fn text_has_any_matches_phrases() {
        let text = ImmutableString::from("I get access denied on the share");
        assert!(text_has_any(text.clone(), strings(&["access denied"])).unwrap());
        assert!(!text_has_any(text, strings(&["denied access"])).unwrap());
    }

    #[test]
    fn first_match_returns_entry_in_list_order() {
        let text = ImmutableString::from("VPN and DNS both fail");
        let found = first_match(text, strings(&["dns", "vpn"])).unwrap();
        assert_eq!(found.into_string().unwrap(), "dns");
        let none = first_match("all good".into(), strings(&["dns"])).unwrap();
        assert!(none.is_unit());
    }

    #[test]
    fn find_path_finds_paths_and_file_names() {
        let cases = [
            (
                "restore /srv/share/finance please",
                Some("/srv/share/finance"),
            ),
            (
                "lost C:\\Users\\ana\\notes.txt!",
                Some("C:\\Users\\ana\\notes.txt"),
            ),
            ("share \\\\fs01\\hr is empty", Some("\\\\fs01\\hr")),
            ("I deleted \"budget.xlsx\".", Some("budget.xlsx")),
            ("see docs/report.pdf, thanks", Some("docs/report.pdf")),
            ("e.g. version 2.10 and/or later.", None),
            ("deleted file yesterday", None),
        ];
        for (text, expected) in cases {
            assert_eq!(find_path(text).as_deref(), expected, "text: {text}");
        }
    }

    #[test]
    fn text_has_any_rejects_non_strings() {
        let list: Array = vec![Dynamic::from("vpn"), Dynamic::from_int(3)];
        let error = text_has_any("text".into(), list).unwrap_err();
        assert!(error.to_string().contains("item 1"), "{error}");
    }
}
