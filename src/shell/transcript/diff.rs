//! A line diff in the unified format, small enough not to need a dependency.
//!
//! The edit script comes from a longest common subsequence of the lines, computed by
//! dynamic programming after the common head and tail are set aside. That table is
//! quadratic in the lines that differ, so past [`MAX_CELLS`] the middle is shown as
//! removed then added in one piece: still correct, only less precise, which is fine for
//! a transcript that has gone that far astray.

use std::fmt::Write;

/// The lines of context around each change.
const CONTEXT: usize = 3;

/// The largest table (old lines times new lines that differ) computed exactly.
const MAX_CELLS: usize = 4_000_000;

/// One step of the edit script from the old lines to the new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit {
    /// The line is in both.
    Same,
    /// The old line is gone.
    Removed,
    /// The new line was added.
    Added,
}

/// A unified diff from `expected` to `actual`, compared line by line (so a missing final
/// newline or `\r\n` endings make no difference), or `None` when the lines are equal.
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
    let edits = edit_script(&old, &new);
    let mut text = String::from("--- expected\n+++ actual\n");
    for (start, end) in hunks(&edits) {
        write_hunk(&mut text, &edits[..end], start, &old, &new);
    }
    Some(text)
}

/// The edits turning `old` into `new`, in order.
fn edit_script(old: &[&str], new: &[&str]) -> Vec<Edit> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old_rest, new_rest) = (&old[head..], &new[head..]);
    let tail = (old_rest.iter().rev())
        .zip(new_rest.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_middle = &old_rest[..old_rest.len() - tail];
    let new_middle = &new_rest[..new_rest.len() - tail];
    let mut edits = vec![Edit::Same; head];
    edits.extend(middle_edits(old_middle, new_middle));
    edits.extend(std::iter::repeat_n(Edit::Same, tail));
    edits
}

/// The edits of the part that differs: from a longest common subsequence when the table
/// is small enough, else all removed then all added.
fn middle_edits(old: &[&str], new: &[&str]) -> Vec<Edit> {
    if old.len().saturating_mul(new.len()) > MAX_CELLS {
        let mut edits = vec![Edit::Removed; old.len()];
        edits.extend(std::iter::repeat_n(Edit::Added, new.len()));
        return edits;
    }
    // common[i][j]: the length of the longest common subsequence of old[i..] and new[j..].
    let width = new.len() + 1;
    let mut common = vec![0u32; (old.len() + 1) * width];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i * width + j] = if old[i] == new[j] {
                common[(i + 1) * width + j + 1] + 1
            } else {
                common[(i + 1) * width + j].max(common[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut edits = Vec::with_capacity(old.len() + new.len());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            edits.push(Edit::Same);
            (i, j) = (i + 1, j + 1);
        } else if i < old.len()
            && (j == new.len() || common[(i + 1) * width + j] >= common[i * width + j + 1])
        {
            edits.push(Edit::Removed);
            i += 1;
        } else {
            edits.push(Edit::Added);
            j += 1;
        }
    }
    edits
}

/// The ranges of edits shown, as `(start, end)`: each change with `CONTEXT` unchanged
/// lines around it, changes closer than twice that merged into one hunk.
fn hunks(edits: &[Edit]) -> Vec<(usize, usize)> {
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for (index, _) in (edits.iter().enumerate()).filter(|(_, edit)| **edit != Edit::Same) {
        let start = index.saturating_sub(CONTEXT);
        let end = (index + 1 + CONTEXT).min(edits.len());
        match hunks.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    hunks
}

/// Writes the hunk of `edits[start..]` with its `@@ -a,b +c,d @@` header.
fn write_hunk(text: &mut String, edits: &[Edit], start: usize, old: &[&str], new: &[&str]) {
    let consumed = |edits: &[Edit], kind: Edit| edits.iter().filter(|e| **e != kind).count();
    let (mut i, mut j) = (
        consumed(&edits[..start], Edit::Added),
        consumed(&edits[..start], Edit::Removed),
    );
    let shown = &edits[start..];
    let (old_count, new_count) = (consumed(shown, Edit::Added), consumed(shown, Edit::Removed));
    let first = |at: usize, count: usize| if count == 0 { at } else { at + 1 };
    let _ = writeln!(
        text,
        "@@ -{},{old_count} +{},{new_count} @@",
        first(i, old_count),
        first(j, new_count)
    );
    for edit in shown {
        let _ = match edit {
            Edit::Same => {
                (i, j) = (i + 1, j + 1);
                writeln!(text, " {}", old[i - 1])
            }
            Edit::Removed => {
                i += 1;
                writeln!(text, "-{}", old[i - 1])
            }
            Edit::Added => {
                j += 1;
                writeln!(text, "+{}", new[j - 1])
            }
        };
    }
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
            "--- expected\n+++ actual\n@@ -0,0 +1,1 @@\n+a\n"
        );
    }

    #[test]
    fn a_huge_difference_falls_back_to_removing_then_adding() {
        let old = lines(0..3000);
        let new = lines(5000..8000);
        let text = diff(&old, &new).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with('-')).count(), 3001);
        assert_eq!(text.lines().filter(|l| l.starts_with('+')).count(), 3001);
    }
}
