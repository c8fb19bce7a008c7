//! A line diff in the unified format, from the `similar` crate (Myers' algorithm: the
//! fewest lines removed and added), laid out as `diff -u` does.
//!
//! Lines are compared without their endings, so a missing final newline or `\r\n`
//! endings make no difference. A pathological pair of texts that would take Myers long
//! is cut off after [`TIMEOUT`], and the rest shown as removed then added: still correct,
//! only less precise, which is fine for a transcript that has gone that far astray.

use similar::{Algorithm, TextDiff};
use std::time::Duration;

/// The lines of context around each change.
const CONTEXT: usize = 3;

/// The longest the diff may search for the smallest edit before it settles for less.
const TIMEOUT: Duration = Duration::from_secs(1);

/// A unified diff from `expected` to `actual`, compared line by line, or `None` when the
/// lines are equal. A hunk header gives a range's start and, unless it is 1, its length.
///
/// ```text
/// --- expected
/// +++ actual
/// @@ -4,3 +4,3 @@
///  > GET x
/// -x = 1
/// +x = 2
/// ```
pub fn diff(expected: &str, actual: &str) -> Option<String> {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    if old == new {
        return None;
    }
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(TIMEOUT)
        .diff_slices(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header("expected", "actual")
        .to_string();
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> String {
        range.map(|n| format!("line {n}\n")).collect()
    }

    #[test]
    fn equal_lines_have_no_diff_whatever_the_line_endings() {
        assert_eq!(diff("a\nb\n", "a\r\nb"), None);
        assert_eq!(diff("", ""), None);
    }

    #[test]
    fn a_changed_line_shows_with_three_lines_of_context() {
        let old = lines(1..11);
        let new = old.replace("line 5\n", "line five\n");
        let expected = "--- expected\n+++ actual\n@@ -2,7 +2,7 @@\n line 2\n line 3\n \
                        line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n";
        assert_eq!(diff(&old, &new).unwrap(), expected);
    }

    #[test]
    fn distant_changes_make_separate_hunks_and_near_ones_merge() {
        let old = lines(1..31);
        let new = old
            .replace("line 2\n", "")
            .replace("line 20\n", "line 20\nextra\n");
        let text = diff(&old, &new).unwrap();
        assert!(text.contains("@@ -1,5 +1,4 @@\n line 1\n-line 2\n line 3\n"));
        assert!(text.contains("@@ -18,6 +17,7 @@\n line 18\n line 19\n line 20\n+extra\n"));
        let near = old.replace("line 2\n", "").replace("line 6\n", "six\n");
        assert_eq!(diff(&old, &near).unwrap().matches("@@ -").count(), 1);
    }

    #[test]
    fn additions_to_an_empty_text_start_at_zero() {
        assert_eq!(
            diff("", "a\n").unwrap(),
            "--- expected\n+++ actual\n@@ -0,0 +1 @@\n+a\n"
        );
    }

    /// Changes at both ends of a long transcript show as two small hunks, however far
    /// apart: nothing between them is shown as removed and added again.
    #[test]
    fn changes_far_apart_in_a_long_text_stay_two_small_hunks() {
        let old = lines(0..3000);
        let new = old
            .replace("line 0\n", "line zero\n")
            .replace("line 2999\n", "line last\n");
        let text = diff(&old, &new).unwrap();
        assert_eq!(text.matches("@@ -").count(), 2, "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with('-')).count(), 3);
        assert_eq!(text.lines().filter(|l| l.starts_with('+')).count(), 3);
    }

    #[test]
    fn a_whole_new_text_is_all_removed_then_added() {
        let old = lines(0..3000);
        let new = lines(5000..8000);
        let text = diff(&old, &new).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with('-')).count(), 3001);
        assert_eq!(text.lines().filter(|l| l.starts_with('+')).count(), 3001);
    }
}
