//! Plain-text layout shared by the layers that print tables: the shell (`STATUS`) and the
//! bench's report. It sits below both, so neither reaches into the other to print.

/// Lays out rows in columns separated by two spaces, each column as wide as its widest
/// cell (counted in characters), with no trailing spaces.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_take_the_widest_cell_and_lines_end_without_spaces() {
        let rows = [row(&["node", "state"]), row(&["0", "up"]), row(&["12", ""])];
        assert_eq!(table(&rows), ["node  state", "0     up", "12"]);
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let rows = [row(&["µs", "x"]), row(&["ab", "y"])];
        assert_eq!(table(&rows), ["µs  x", "ab  y"]);
    }
}
