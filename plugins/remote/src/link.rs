//! Link templates such as `ssh://{{user}}@{{fqdn}}`, the character check that every
//! inserted value passes, and the name patterns that assign a CI to a class.

/// Maximum length of a value in a link, in characters: the maximum length of a DNS name.
pub(crate) const MAX_VALUE_CHARS: usize = 253;

/// Schemes that a browser would run or read locally. They are never allowed, whatever the
/// configuration lists, because the link is shown on the record for a person to click.
pub(crate) const FORBIDDEN_SCHEMES: [&str; 6] =
    ["javascript", "data", "file", "vbscript", "about", "blob"];

/// A piece of a link template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Attribute(String),
}

/// A link with `{{attribute}}` placeholders, checked when the configuration loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkTemplate {
    scheme: String,
    parts: Vec<Part>,
}

impl LinkTemplate {
    /// Parses a template. The scheme must be fixed text and one of `allowed_schemes`, and
    /// each placeholder must name one of `attributes`.
    pub(crate) fn parse(
        source: &str,
        allowed_schemes: &[String],
        attributes: &[&str],
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();

        let scheme = match source.split_once(':') {
            Some((scheme, _)) if is_scheme(scheme) => scheme.to_ascii_lowercase(),
            _ => {
                return Err(vec![format!(
                    "`{source}` does not start with a scheme such as ssh:, rdp: or vnc:. Write the scheme as fixed text"
                )]);
            }
        };
        if FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
            problems.push(format!(
                "`{source}` uses the scheme `{scheme}`, which is never allowed because a browser would run or read it. Use a scheme for a remote connection, such as ssh"
            ));
        } else if !allowed_schemes.contains(&scheme) {
            problems.push(format!(
                "`{source}` uses the scheme `{scheme}`, which is not in `allowed_schemes` ({}). Add it there, or change the link",
                allowed_schemes.join(", ")
            ));
        }

        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                problems.push(format!(
                    "`{source}` has a `{{{{` that is not closed. Close it with `}}}}`"
                ));
                return Err(problems);
            };
            let name = after[..end].trim();
            if attributes.contains(&name) {
                parts.push(Part::Attribute(name.to_owned()));
            } else {
                problems.push(format!(
                    "`{source}` uses `{{{{{name}}}}}`, which is not an attribute of the class. Use one of {}, or add it under `attributes`",
                    attributes
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if parts
            .iter()
            .any(|part| matches!(part, Part::Text(text) if text.contains("}}")))
        {
            problems.push(format!(
                "`{source}` has a `}}}}` without an opening `{{{{`. Remove it"
            ));
        }

        if problems.is_empty() {
            Ok(LinkTemplate { scheme, parts })
        } else {
            Err(problems)
        }
    }

    /// Builds the link. `value_of` returns an attribute's checked value, or why it cannot
    /// go into a link.
    pub(crate) fn render(
        &self,
        value_of: impl Fn(&str) -> Result<String, String>,
    ) -> Result<String, String> {
        let mut link = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => link.push_str(text),
                Part::Attribute(name) => link.push_str(&value_of(name)?),
            }
        }
        Ok(link)
    }

    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }
}

/// Checks a URL scheme: a letter, then letters, digits, `+`, `-` and `.`.
pub(crate) fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Checks a value before it goes into a link: ASCII letters, digits, `.`, `-` and `_`,
/// not starting with `-` or `.`, at most [`MAX_VALUE_CHARS`] characters. Anything else
/// could change what the link connects to (`@`, `/`, `:`), pass options to the program
/// that opens it (a leading `-`), or look like another host (a Cyrillic `а`).
/// Returns the problem, without the value's owner, such as `contains `;``.
pub(crate) fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(String::from("is empty"));
    }
    if let Some(bad) = value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        // Spaces, control and invisible characters are shown by code point only.
        let described = if bad.is_ascii_graphic() {
            format!("`{bad}`")
        } else if bad.is_alphanumeric() {
            format!("`{bad}` (U+{:04X}, not an ASCII letter)", u32::from(bad))
        } else {
            format!("the character U+{:04X}", u32::from(bad))
        };
        return Err(format!("contains {described}"));
    }
    if value.starts_with(['-', '.']) {
        return Err(format!("starts with `{}`", &value[..1]));
    }
    let length = value.chars().count();
    if length > MAX_VALUE_CHARS {
        return Err(format!(
            "is {length} characters long, more than the maximum of {MAX_VALUE_CHARS}"
        ));
    }
    Ok(())
}

/// Matches a CI name against a pattern with `*` (any text) and `?` (one character),
/// ignoring ASCII case.
pub(crate) fn matches_pattern(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let name: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();

    // Classic wildcard matching with one backtrack point: the last `*` seen.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemes() -> Vec<String> {
        vec![
            String::from("ssh"),
            String::from("rdp"),
            String::from("vnc"),
        ]
    }

    #[test]
    fn template_renders_attributes() {
        let template = LinkTemplate::parse(
            "ssh://{{user}}@{{ fqdn }}:22",
            &schemes(),
            &["user", "fqdn"],
        )
        .unwrap();

        let link = template
            .render(|name| match name {
                "user" => Ok(String::from("admin")),
                "fqdn" => Ok(String::from("db1.corp.example")),
                _ => Err(format!("no {name}")),
            })
            .unwrap();

        assert_eq!(link, "ssh://admin@db1.corp.example:22");
        assert_eq!(template.scheme(), "ssh");
    }

    #[test]
    fn template_checks_scheme() {
        let not_allowed = LinkTemplate::parse("telnet://{{host}}", &schemes(), &["host"]);
        let forbidden = LinkTemplate::parse("javascript:alert({{host}})", &schemes(), &["host"]);
        let templated = LinkTemplate::parse("{{host}}://x", &schemes(), &["host"]);

        assert!(
            not_allowed.unwrap_err()[0]
                .contains("`telnet`, which is not in `allowed_schemes` (ssh, rdp, vnc)")
        );
        assert!(forbidden.unwrap_err()[0].contains("never allowed"));
        assert!(templated.unwrap_err()[0].contains("does not start with a scheme"));
    }

    #[test]
    fn template_checks_attributes() {
        let problems = LinkTemplate::parse("ssh://{{usr}}@{{host}}", &schemes(), &["host", "user"])
            .unwrap_err();

        assert_eq!(
            problems,
            [
                "`ssh://{{usr}}@{{host}}` uses `{{usr}}`, which is not an attribute of the class. Use one of `host`, `user`, or add it under `attributes`"
            ]
        );
    }

    #[test]
    fn template_checks_braces() {
        let open = LinkTemplate::parse("ssh://{{host", &schemes(), &["host"]).unwrap_err();
        let close = LinkTemplate::parse("ssh://host}}", &schemes(), &["host"]).unwrap_err();

        assert!(open[0].contains("not closed"), "{open:?}");
        assert!(close[0].contains("without an opening"), "{close:?}");
    }

    #[test]
    fn values_pass_check() {
        for value in ["db1", "db1.corp.example", "web-01", "svc_account", "A1"] {
            assert_eq!(check_value(value), Ok(()), "{value}");
        }
    }

    #[test]
    fn hostile_values_fail_check() {
        let cases = [
            ("host;rm -rf", "contains `;`"),
            ("evil.com@good", "contains `@`"),
            ("a/b", "contains `/`"),
            ("a b", "contains the character U+0020"),
            ("line\nbreak", "contains the character U+000A"),
            (
                "\u{0455}rv1",
                "contains `\u{0455}` (U+0455, not an ASCII letter)",
            ),
            (
                "exa\u{0441}t",
                "contains `\u{0441}` (U+0441, not an ASCII letter)",
            ),
            ("-oProxyCommand", "starts with `-`"),
            (".hidden", "starts with `.`"),
            ("h:22", "contains `:`"),
            ("", "is empty"),
        ];
        for (value, problem) in cases {
            assert_eq!(check_value(value), Err(problem.to_owned()), "{value:?}");
        }
        let long = "a".repeat(254);
        assert_eq!(
            check_value(&long),
            Err(String::from(
                "is 254 characters long, more than the maximum of 253"
            ))
        );
    }

    #[test]
    fn patterns_match() {
        assert!(matches_pattern("srv-*", "srv-db1"));
        assert!(matches_pattern("SRV-*", "srv-db1"));
        assert!(matches_pattern("*-db?", "prod-db1"));
        assert!(matches_pattern("*", "anything"));
        assert!(matches_pattern("a*b*c", "axxbyyc"));
        assert!(!matches_pattern("srv-*", "ws-01"));
        assert!(!matches_pattern("*-db?", "prod-db12"));
        assert!(!matches_pattern("a*b*c", "axxbyy"));
    }
}
