//! Usage hints: dimmed after the cursor, the rest of the command being typed
//! (` node <N> [AT <point>]` after `CRASH`, `<point>` after `CRASH node 1 AT `).
//!
//! A hint shows only with the cursor at the end of the line, and either after a whole
//! word or while the first word is a unique prefix of a command. The right arrow
//! accepts only literal text (the rest of that command's keyword), never a
//! placeholder such as `<N>`.

use super::words::{Typed, USAGES, command_keywords, is_lower};
use rustyline::hint::Hint;

/// A hint: the rest of the usage, of which the first `literal` bytes (the rest of a
/// keyword being typed) are inserted by the right arrow.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageHint {
    display: String,
    literal: usize,
}

impl Hint for UsageHint {
    fn display(&self) -> &str {
        &self.display
    }

    fn completion(&self) -> Option<&str> {
        (self.literal > 0).then(|| &self.display[..self.literal])
    }
}

/// The hint after `line`, the cursor at its end.
pub fn usage_hint(line: &str) -> Option<UsageHint> {
    let typed = Typed::read(line);
    let partial = &line[typed.start..];
    if partial.is_empty() {
        let (keywords, usage) = usage_of_longest_prefix(&typed.words)?;
        let typed_args = typed.words.len() - keywords.split(' ').count();
        let display = remaining(usage, typed_args);
        return (!display.is_empty()).then_some(UsageHint {
            display,
            literal: 0,
        });
    }
    if !typed.words.is_empty() {
        return None;
    }
    let mut matching = command_keywords().filter(|keyword| {
        keyword.len() >= partial.len() && keyword[..partial.len()].eq_ignore_ascii_case(partial)
    });
    let keyword = matching.next().filter(|_| matching.next().is_none())?;
    let rest = &keyword[partial.len()..];
    let rest = if is_lower(partial) {
        rest.to_ascii_lowercase()
    } else {
        rest.to_string()
    };
    let usage = USAGES
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|(_, u)| *u)?;
    let display = match usage {
        "" => rest.clone(),
        usage => format!("{rest} {usage}"),
    };
    (!display.is_empty()).then_some(UsageHint {
        display,
        literal: rest.len(),
    })
}

/// The usage whose keywords begin `words`, the longest such.
fn usage_of_longest_prefix(words: &[String]) -> Option<&'static (&'static str, &'static str)> {
    USAGES
        .iter()
        .filter(|(keywords, _)| {
            let count = keywords.split(' ').count();
            count <= words.len()
                && keywords
                    .split(' ')
                    .eq(words[..count].iter().map(|w| &w[..]))
        })
        .max_by_key(|(keywords, _)| keywords.len())
}

/// The part of `usage` after `typed` words: `node <N> [AT <point>]` after one word is
/// `<N> [AT <point>]`, after three `<point>`.
fn remaining(usage: &str, typed: usize) -> String {
    if usage.contains('|') {
        return if typed == 0 {
            usage.to_string()
        } else {
            String::new()
        };
    }
    let mut left = typed;
    let mut parts = Vec::new();
    for unit in units(usage) {
        let optional = unit.strip_prefix('[').and_then(|u| u.strip_suffix(']'));
        match optional {
            _ if left == 0 => parts.push(unit.to_string()),
            Some(inner) if units(inner).len() > left => {
                parts.push(remaining(inner, left));
                left = 0;
            }
            Some(inner) => left -= units(inner).len(),
            None => left -= 1,
        }
    }
    parts.join(" ")
}

/// The words and `[...]` groups of a usage.
fn units(usage: &str) -> Vec<&str> {
    let mut units = Vec::new();
    let (mut depth, mut start) = (0usize, None);
    for (index, c) in usage.char_indices() {
        match c {
            ' ' if depth == 0 => {
                if let Some(start) = start.take() {
                    units.push(&usage[start..index]);
                }
                continue;
            }
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        start.get_or_insert(index);
    }
    units.extend(start.map(|start| &usage[start..]));
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(line: &str) -> Option<String> {
        usage_hint(line).map(|hint| hint.display)
    }

    #[test]
    fn hints_show_the_rest_of_the_usage() {
        assert_eq!(hint("CRASH"), Some(" node <N> [AT <point>]".into()));
        assert_eq!(hint("CRASH "), Some("node <N> [AT <point>]".into()));
        assert_eq!(hint("crash node 1 "), Some("[AT <point>]".into()));
        assert_eq!(hint("CRASH node 1 AT "), Some("<point>".into()));
        assert_eq!(hint("CRASH node 1 AT vote "), None);
        assert_eq!(hint("begin read "), Some("ONLY".into()));
        assert_eq!(hint("SHOW LOG "), Some("node <N> [LAST <n>]".into()));
        assert_eq!(hint("alice: PUT "), Some("<key> <value>".into()));
        assert_eq!(hint("GET x "), Some("[FOR UPDATE]".into()));
        assert_eq!(hint("GET x FOR "), Some("UPDATE".into()));
        assert_eq!(hint("CRASH no"), None);
        assert_eq!(hint("COMMIT"), None);
    }

    #[test]
    fn a_unique_prefix_hints_the_keyword_which_the_right_arrow_accepts() {
        let hint = usage_hint("cra").unwrap();
        assert_eq!(hint.display(), "sh node <N> [AT <point>]");
        assert_eq!(hint.completion(), Some("sh"));
        assert_eq!(usage_hint("COMM").unwrap().completion(), Some("IT"));
        assert_eq!(usage_hint("S"), None);
    }
}
