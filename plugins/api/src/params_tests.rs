use serde_json::json;

use super::*;

fn param(kind: ParamType) -> ParamSpec {
    ParamSpec {
        kind,
        label: String::new(),
        description: String::new(),
        required: false,
        default: None,
        values: Vec::new(),
        max_length: None,
    }
}

fn action(params: Vec<(&str, ParamSpec)>) -> ActionSpec {
    ActionSpec {
        name: String::from("restore_file"),
        label: String::from("Restore file"),
        description: String::new(),
        params: params
            .into_iter()
            .map(|(name, spec)| (name.to_owned(), spec))
            .collect(),
        timeout_seconds: 60,
        roles: vec![String::from("technician")],
        needs_approval: false,
        idempotent: true,
    }
}

fn given(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test input must be an object, got {other}"),
    }
}

/// Validates one parameter `p` of the given declaration and returns the error, if any.
fn error_for(spec: ParamSpec, value: Value) -> Option<ParamError> {
    let action = action(vec![("p", spec)]);
    match validate_params(&action, &given(json!({ "p": value }))) {
        Ok(_) => None,
        Err(errors) => {
            assert_eq!(errors.errors.len(), 1, "{errors}");
            Some(errors.errors[0].clone())
        }
    }
}

#[test]
fn defaults_fill_missing_values() {
    let mut count = param(ParamType::Integer);
    count.default = Some(json!(3));
    let mut host = param(ParamType::String);
    host.required = true;
    let spec = action(vec![("host", host), ("count", count)]);

    let valid = validate_params(&spec, &given(json!({ "host": "db1" }))).unwrap();

    assert_eq!(valid.get("host"), Some(&json!("db1")));
    assert_eq!(valid.get("count"), Some(&json!(3)));
}

#[test]
fn null_counts_as_not_given() {
    let mut count = param(ParamType::Integer);
    count.default = Some(json!(3));
    let spec = action(vec![("count", count), ("note", param(ParamType::Text))]);

    let valid = validate_params(&spec, &given(json!({ "count": null, "note": null }))).unwrap();

    assert_eq!(valid.get("count"), Some(&json!(3)));
    assert!(!valid.contains_key("note"));
}

#[test]
fn given_value_overrides_default() {
    let mut count = param(ParamType::Integer);
    count.default = Some(json!(3));
    let spec = action(vec![("count", count)]);

    let valid = validate_params(&spec, &given(json!({ "count": 7 }))).unwrap();

    assert_eq!(valid.get("count"), Some(&json!(7)));
}

#[test]
fn unknown_parameter_suggests_near_name() {
    let spec = action(vec![("path", param(ParamType::String))]);

    let errors = validate_params(&spec, &given(json!({ "pth": "/srv" }))).unwrap_err();

    let error = errors.get("pth").unwrap();
    assert_eq!(error.value.as_deref(), Some("\"/srv\""));
    assert!(error.fix.contains("`path`"), "{error}");
}

#[test]
fn unknown_parameter_lists_declared_ones() {
    let spec = action(vec![
        ("path", param(ParamType::String)),
        ("host", param(ParamType::String)),
    ]);

    let errors = validate_params(&spec, &given(json!({ "destination": "x" }))).unwrap_err();

    let error = errors.get("destination").unwrap();
    assert!(error.fix.contains("`path`, `host`"), "{error}");
}

#[test]
fn missing_required_parameter_is_reported() {
    let mut path = param(ParamType::String);
    path.required = true;
    let spec = action(vec![("path", path)]);

    let errors = validate_params(&spec, &Map::new()).unwrap_err();

    let error = errors.get("path").unwrap();
    assert_eq!(error.value, None);
    assert_eq!(error.problem, "is missing");
    assert!(error.fix.contains("one line of text"), "{error}");
}

#[test]
fn every_problem_is_listed_at_once() {
    let mut path = param(ParamType::String);
    path.required = true;
    let spec = action(vec![("path", path), ("count", param(ParamType::Integer))]);

    let errors =
        validate_params(&spec, &given(json!({ "count": "x", "colour": "red" }))).unwrap_err();

    let names: Vec<&str> = errors.errors.iter().map(|e| e.param.as_str()).collect();
    assert_eq!(names, ["path", "count", "colour"]);
    let text = errors.to_string();
    assert!(
        text.starts_with("3 invalid parameters for action `restore_file`"),
        "{text}"
    );
}

#[test]
fn quoted_number_is_not_an_integer() {
    let error = error_for(param(ParamType::Integer), json!("42")).unwrap();

    assert_eq!(error.problem, "is text, not an integer");
    assert_eq!(error.fix, "Send the number without quotes, as 42");
}

#[test]
fn fraction_is_not_an_integer() {
    let error = error_for(param(ParamType::Integer), json!(2.5)).unwrap();
    assert_eq!(error.problem, "is not a whole number");

    let error = error_for(param(ParamType::Integer), json!(3.0)).unwrap();
    assert_eq!(error.fix, "Send it without the decimal point, as 3");
}

#[test]
fn integer_beyond_i64_is_too_large() {
    let error = error_for(param(ParamType::Integer), json!(u64::MAX)).unwrap();

    assert_eq!(error.problem, "is too large");
}

#[test]
fn integers_accepted_as_integers() {
    assert_eq!(error_for(param(ParamType::Integer), json!(-5)), None);
    assert_eq!(error_for(param(ParamType::Integer), json!(0)), None);
}

#[test]
fn number_accepts_integers_and_fractions() {
    assert_eq!(error_for(param(ParamType::Number), json!(2)), None);
    assert_eq!(error_for(param(ParamType::Number), json!(2.5)), None);

    let error = error_for(param(ParamType::Number), json!("2.5")).unwrap();
    assert_eq!(error.problem, "is text, not a number");
    assert_eq!(error.fix, "Send the number without quotes");
}

#[test]
fn boolean_rejects_quoted_true() {
    assert_eq!(error_for(param(ParamType::Boolean), json!(true)), None);

    let error = error_for(param(ParamType::Boolean), json!("true")).unwrap();
    assert_eq!(error.problem, "is text, not true or false");
    assert_eq!(error.fix, "Send true or false without quotes");

    let error = error_for(param(ParamType::Boolean), json!(1)).unwrap();
    assert_eq!(error.problem, "is a number, not true or false");
}

#[test]
fn number_is_not_a_string() {
    let error = error_for(param(ParamType::String), json!(42)).unwrap();

    assert_eq!(error.problem, "is a number, not text");
    assert_eq!(error.fix, "Send it in quotes, as \"42\"");
}

#[test]
fn enum_rejects_unlisted_value() {
    let mut mode = param(ParamType::Enum);
    mode.values = vec![String::from("fast"), String::from("full")];

    assert_eq!(error_for(mode.clone(), json!("full")), None);

    let error = error_for(mode.clone(), json!("FULL")).unwrap();
    assert_eq!(error.problem, "is not an allowed value");
    assert!(error.fix.starts_with("Did you mean `full`?"), "{error}");

    let error = error_for(mode.clone(), json!("something else")).unwrap();
    assert_eq!(error.fix, "Use one of `fast`, `full`");

    let error = error_for(mode, json!(1)).unwrap();
    assert_eq!(error.problem, "is a number, not one of the allowed values");
}

#[test]
fn max_length_counts_characters() {
    let mut name = param(ParamType::String);
    name.max_length = Some(3);

    assert_eq!(error_for(name.clone(), json!("äöü")), None);

    let error = error_for(name, json!("äöüß")).unwrap();
    assert_eq!(
        error.problem,
        "has 4 characters, more than the maximum of 3"
    );
    assert_eq!(error.fix, "Shorten it to at most 3 characters");
}

#[test]
fn max_length_applies_to_text() {
    let mut note = param(ParamType::Text);
    note.max_length = Some(5);

    let error = error_for(note, json!("ab\ncdef")).unwrap();

    assert_eq!(
        error.problem,
        "has 7 characters, more than the maximum of 5"
    );
}

#[test]
fn long_value_is_shortened_in_errors() {
    let mut name = param(ParamType::String);
    name.max_length = Some(10);

    let error = error_for(name, json!("x".repeat(100_000))).unwrap();

    let shown = error.value.unwrap();
    assert!(shown.chars().count() < 100, "{shown}");
    assert!(shown.ends_with("… (100000 characters)"), "{shown}");
}

#[test]
fn string_rejects_line_breaks() {
    let error = error_for(param(ParamType::String), json!("a\nrm x")).unwrap();
    assert_eq!(
        error.problem,
        "contains a line break at character 2, but the parameter holds one line"
    );
    assert_eq!(error.value.as_deref(), Some("\"a\\nrm x\""));

    let error = error_for(param(ParamType::String), json!("a\rb")).unwrap();
    assert!(
        error.problem.starts_with("contains a line break"),
        "{error}"
    );
}

#[test]
fn string_rejects_control_characters() {
    let error = error_for(param(ParamType::String), json!("ab\u{1b}[2J")).unwrap();
    assert_eq!(
        error.problem,
        "contains the control character U+001B at character 3"
    );

    let error = error_for(param(ParamType::String), json!("a\u{0}")).unwrap();
    assert_eq!(
        error.problem,
        "contains the control character U+0000 at character 2"
    );

    let error = error_for(param(ParamType::String), json!("a\u{85}")).unwrap();
    assert_eq!(
        error.problem,
        "contains the control character U+0085 at character 2"
    );
}

#[test]
fn string_allows_tab() {
    assert_eq!(error_for(param(ParamType::String), json!("a\tb")), None);
}

#[test]
fn text_allows_newlines_and_tabs() {
    assert_eq!(error_for(param(ParamType::Text), json!("a\nrm x")), None);
    assert_eq!(error_for(param(ParamType::Text), json!("a\r\n\tb")), None);
}

#[test]
fn text_rejects_other_control_characters() {
    let error = error_for(param(ParamType::Text), json!("a\rb")).unwrap();
    assert_eq!(
        error.problem,
        "contains the control character U+000D at character 2"
    );

    let error = error_for(param(ParamType::Text), json!("x\u{7}")).unwrap();
    assert_eq!(
        error.problem,
        "contains the control character U+0007 at character 2"
    );
}

#[test]
fn list_rejects_non_string_elements() {
    let spec = action(vec![("hosts", param(ParamType::List))]);

    let errors =
        validate_params(&spec, &given(json!({ "hosts": ["db1", 2, null, "db\n4"] }))).unwrap_err();

    let names: Vec<&str> = errors.errors.iter().map(|e| e.param.as_str()).collect();
    assert_eq!(names, ["hosts[1]", "hosts[2]", "hosts[3]"]);
    assert_eq!(errors.errors[0].problem, "is a number, not text");
    assert_eq!(errors.errors[1].problem, "is null, not text");
    assert!(
        errors.errors[2]
            .problem
            .starts_with("contains a line break")
    );
}

#[test]
fn list_checks_element_length() {
    let mut hosts = param(ParamType::List);
    hosts.max_length = Some(3);

    assert_eq!(error_for(hosts.clone(), json!(["db1", "db2"])), None);

    let error = error_for(hosts, json!(["db1", "db22"])).unwrap();
    assert_eq!(error.param, "p[1]");
}

#[test]
fn list_rejects_single_string() {
    let error = error_for(param(ParamType::List), json!("db1")).unwrap();

    assert_eq!(error.problem, "is text, not a list");
}

#[test]
fn invalid_default_is_reported_when_used() {
    let mut count = param(ParamType::Integer);
    count.default = Some(json!("3"));
    let spec = action(vec![("count", count)]);

    let errors = validate_params(&spec, &Map::new()).unwrap_err();

    let error = errors.get("count").unwrap();
    assert_eq!(
        error.problem,
        "the plugin's default is text, not an integer"
    );
}

#[test]
fn error_display_names_parameter_value_and_fix() {
    let error = error_for(param(ParamType::Integer), json!("42")).unwrap();

    assert_eq!(
        error.to_string(),
        "parameter `p` (value \"42\"): is text, not an integer. Send the number without quotes, as 42"
    );
}

#[test]
fn check_spec_accepts_valid_spec() {
    let mut mode = param(ParamType::Enum);
    mode.values = vec![String::from("fast")];
    mode.default = Some(json!("fast"));
    let mut path = param(ParamType::String);
    path.max_length = Some(4096);
    let spec = action(vec![("mode", mode), ("path", path)]);

    assert_eq!(check_spec(&spec), Vec::<String>::new());
}

#[test]
fn check_spec_rejects_zero_timeout() {
    let mut spec = action(vec![]);
    spec.timeout_seconds = 0;

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("timeout_seconds 0"), "{problems:?}");
}

#[test]
fn check_spec_rejects_bad_names() {
    let mut spec = action(vec![("File Path", param(ParamType::String))]);
    spec.name = String::from("Restore File");
    spec.roles = vec![String::from("Tech Support")];

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains("such as `restore_file`"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("role `Tech Support` is invalid"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].contains("such as `file_path`"),
        "{}",
        problems[2]
    );
}

#[test]
fn check_spec_rejects_empty_label() {
    let mut spec = action(vec![]);
    spec.label = String::from("  ");

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("has no label"), "{problems:?}");
}

#[test]
fn check_spec_rejects_enum_without_values() {
    let spec = action(vec![("mode", param(ParamType::Enum))]);

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("without values"), "{problems:?}");
}

#[test]
fn check_spec_rejects_values_on_non_enum() {
    let mut mode = param(ParamType::String);
    mode.values = vec![String::from("a")];
    let spec = action(vec![("mode", mode)]);

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("set `type: enum`"), "{problems:?}");
}

#[test]
fn check_spec_rejects_default_of_wrong_type() {
    let mut count = param(ParamType::Integer);
    count.default = Some(json!("3"));
    let mut mode = param(ParamType::Enum);
    mode.values = vec![String::from("fast")];
    mode.default = Some(json!("slow"));
    let spec = action(vec![("count", count), ("mode", mode)]);

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        problems[0],
        "action `restore_file`, parameter `count`: the default \"3\" is text, not an integer. Write a default of type `integer` or remove it"
    );
    assert!(problems[1].contains("the default \"slow\" is not an allowed value"));
}

#[test]
fn check_spec_rejects_misplaced_max_length() {
    let mut count = param(ParamType::Integer);
    count.max_length = Some(3);
    let mut name = param(ParamType::String);
    name.max_length = Some(0);
    let spec = action(vec![("count", count), ("name", name)]);

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("only `string`, `text` and `list`"));
    assert!(problems[1].contains("max_length 0"));
}

#[test]
fn check_spec_rejects_duplicate_enum_values_and_roles() {
    let mut mode = param(ParamType::Enum);
    mode.values = vec![String::from("a"), String::from("a")];
    let mut spec = action(vec![("mode", mode)]);
    spec.roles = vec![String::from("technician"), String::from("technician")];

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("role `technician` twice"));
    assert!(problems[1].contains("value `a` twice"));
}

#[test]
fn check_actions_rejects_duplicate_names() {
    let actions = vec![action(vec![]), action(vec![])];

    let problems = check_actions(&actions);

    assert_eq!(
        problems,
        ["action `restore_file` is declared twice. Rename or remove one of them"]
    );
}

#[test]
fn check_name_rules() {
    assert_eq!(check_name("disk_usage"), Ok(()));
    assert_eq!(check_name("a1"), Ok(()));
    assert_eq!(check_name(""), Err(String::from("it is empty")));
    assert_eq!(
        check_name("1a"),
        Err(String::from("it starts with `1`, not a lowercase letter"))
    );
    assert_eq!(check_name("a-b"), Err(String::from("it contains `-`")));
    assert!(check_name(&"a".repeat(65)).is_err());
}

#[test]
fn abbreviation_suggests_full_name() {
    let spec = action(vec![
        ("seconds", param(ParamType::Integer)),
        ("host", param(ParamType::String)),
    ]);

    let errors = validate_params(&spec, &given(json!({ "secs": 3 }))).unwrap_err();

    assert_eq!(errors.get("secs").unwrap().fix, "Did you mean `seconds`?");
}

#[test]
fn check_spec_rejects_null_default() {
    let mut note = param(ParamType::Text);
    note.default = Some(Value::Null);
    let spec = action(vec![("note", note)]);

    let problems = check_spec(&spec);

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("has the default null"),
        "{}",
        problems[0]
    );
}

#[test]
fn yaml_null_default_means_none() {
    let text = "type: string\ndefault: null\n";

    let param: ParamSpec = crate::yaml::parse_yaml(text).unwrap();

    assert_eq!(param.default, None);
}
