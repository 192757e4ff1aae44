//! Checks of an asset file's text before the YAML parser sees it, for inputs the parser handles
//! badly: flow collections nested so deep that parsing takes quadratic time (100,000 `[` took 21 s),
//! and tabs used for indentation (the parser only says "found character that cannot start any
//! token").

/// Deepest nesting of `[` and `{` accepted; no asset definition comes near it.
pub(super) const MAX_NESTING: usize = 128;

/// Why `text` is refused, with its 1-based line and column: nesting deeper than [`MAX_NESTING`].
/// Brackets inside quotes and comments are not counted.
pub(super) fn too_deep(text: &str) -> Option<(usize, usize, String)> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        for (col, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some((
                            n + 1,
                            col + 1,
                            format!(
                                "brackets nested more than {MAX_NESTING} deep; an asset definition \
                                 needs a few levels at most"
                            ),
                        ));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

/// The first line indented with a tab, as (line, column), 1-based.
pub(super) fn tab_indent(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(n, line)| {
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        indent.find('\t').map(|i| (n + 1, i + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_and_tab_indents_are_found() {
        assert!(too_deep("key: a\nquery: SELECT x[1] FROM t # [[[\n").is_none());
        assert!(too_deep(&format!("x: '{}'\n", "[".repeat(1000))).is_none());
        let deep = format!("key: a\nx: {}", "[".repeat(100_000));
        let (line, col, _) = too_deep(&deep).unwrap();
        assert_eq!((line, col), (2, 4 + MAX_NESTING));
        assert_eq!(tab_indent("key: a\n\tkind: sql\n"), Some((2, 1)));
        assert_eq!(tab_indent("key: a\nquery: SELECT\t1\n"), None);
    }
}
