//! Search syntax shared by both backends. A query is words (all must match; the last one also
//! matches as a prefix, as a person types), `"quoted phrases"`, `-excluded` words and `or`
//! between alternatives — the grammar of PostgreSQL's `websearch_to_tsquery` plus prefix
//! matching. Input is reduced to letters and digits before anything reaches SQL, so no input
//! (quotes, operators, SQL, emoji, 500 characters) can make a query fail.

/// Words and phrases beyond this are ignored.
const MAX_TERMS: usize = 16;
/// Longer words are cut.
const MAX_WORD_CHARS: usize = 64;

/// One thing to look for: a word, or a phrase of several in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    words: Vec<String>,
    /// Matches words starting with the (single) word.
    prefix: bool,
}

/// A parsed search: every group must match (AND), a group matches when any of its terms does
/// (OR); no excluded term may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    groups: Vec<Vec<Term>>,
    excluded: Vec<Term>,
}

impl SearchQuery {
    /// `None` when the text has nothing to search for (empty, only punctuation, only exclusions).
    pub fn parse(text: &str) -> Option<Self> {
        let mut groups: Vec<Vec<Term>> = Vec::new();
        let mut excluded = Vec::new();
        let mut join_with_previous = false;
        let mut count = 0;
        // Only a plain word at the very end of the text is still being typed.
        let mut ends_with_plain_word = false;
        for raw in lex(text) {
            if count >= MAX_TERMS {
                break;
            }
            ends_with_plain_word = matches!(raw, Raw::Text { quoted: false, negated: false, .. });
            match raw {
                Raw::Or => join_with_previous = !groups.is_empty(),
                Raw::Text { text, quoted: _, negated } => {
                    let words = words_of(&text);
                    if words.is_empty() {
                        continue;
                    }
                    count += 1;
                    let term = Term { words, prefix: false };
                    if negated {
                        excluded.push(term);
                    } else if join_with_previous {
                        if let Some(last) = groups.last_mut() {
                            last.push(term);
                        }
                    } else {
                        groups.push(vec![term]);
                    }
                    join_with_previous = false;
                }
            }
        }
        // The last unquoted single word is probably still being typed.
        if let Some(term) = groups.last_mut().and_then(|g| g.last_mut())
            && term.words.len() == 1
            && ends_with_plain_word
        {
            term.prefix = true;
        }
        (!groups.is_empty()).then_some(Self { groups, excluded })
    }

    /// A `to_tsquery` expression; every word is quoted letters and digits only.
    pub(crate) fn to_tsquery(&self) -> String {
        let render = |t: &Term| -> String {
            let quoted: Vec<String> = t.words.iter().map(|w| format!("'{w}'")).collect();
            match (quoted.as_slice(), t.prefix) {
                ([one], true) => format!("{one}:*"),
                ([one], false) => one.clone(),
                (many, _) => format!("({})", many.join(" <-> ")),
            }
        };
        let mut parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| format!("({})", g.iter().map(render).collect::<Vec<_>>().join(" | ")))
            .collect();
        parts.extend(self.excluded.iter().map(|t| format!("!{}", render(t))));
        parts.join(" & ")
    }

    /// An SQLite FTS5 `MATCH` expression; every word is a double-quoted string of letters and
    /// digits only.
    pub(crate) fn to_fts5(&self) -> String {
        let render = |t: &Term| -> String {
            let phrase = format!("\"{}\"", t.words.join(" "));
            if t.prefix { format!("{phrase}*") } else { phrase }
        };
        let positive = self
            .groups
            .iter()
            .map(|g| format!("({})", g.iter().map(render).collect::<Vec<_>>().join(" OR ")))
            .collect::<Vec<_>>()
            .join(" AND ");
        if self.excluded.is_empty() {
            positive
        } else {
            let excluded = self.excluded.iter().map(render).collect::<Vec<_>>().join(" OR ");
            format!("({positive}) NOT ({excluded})")
        }
    }
}

enum Raw {
    Or,
    Text { text: String, quoted: bool, negated: bool },
}

/// Splits into quoted phrases, `-`words, `or`, and plain words.
fn lex(text: &str) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            out.push(Raw::Text { text: phrase, quoted: true, negated });
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '"' {
                break;
            }
            word.push(c);
            chars.next();
        }
        if !negated && word.eq_ignore_ascii_case("or") {
            out.push(Raw::Or);
        } else {
            out.push(Raw::Text { text: word, quoted: false, negated });
        }
    }
    out
}

/// Lowercased runs of letters and digits: `T-Shirt` → `t`, `shirt`.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect::<String>().to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_words_and_a_prefix_on_the_last() {
        let q = SearchQuery::parse("running shoes").unwrap();
        assert_eq!(q.to_tsquery(), "('running') & ('shoes':*)");
        assert_eq!(q.to_fts5(), r#"("running") AND ("shoes"*)"#);
    }

    #[test]
    fn phrases_alternatives_and_exclusions() {
        let q = SearchQuery::parse(r#""trail shoe" or boot -leather"#).unwrap();
        assert_eq!(q.to_tsquery(), "(('trail' <-> 'shoe') | 'boot') & !'leather'");
        assert_eq!(q.to_fts5(), r#"(("trail shoe" OR "boot")) NOT ("leather")"#);
    }

    #[test]
    fn punctuation_and_operators_become_plain_words() {
        let q = SearchQuery::parse("a&b | c:* (d) !e ' OR 1=1; --").unwrap();
        let ts = q.to_tsquery();
        assert!(
            !ts.contains(';') && !ts.contains('=') && !ts.contains('('.to_string().repeat(3).as_str()),
            "{ts}"
        );
        let fts = q.to_fts5();
        assert!(!fts.contains(';') && !fts.contains('='), "{fts}");
    }

    #[test]
    fn nothing_to_search_for_is_none() {
        for q in ["", "   ", "!!! ??? ***", "-excluded", "\"\"", "or"] {
            assert_eq!(SearchQuery::parse(q), None, "{q:?}");
        }
    }

    #[test]
    fn hyphenated_words_are_phrases() {
        let q = SearchQuery::parse("t-shirt").unwrap();
        assert_eq!(q.to_fts5(), r#"("t shirt")"#);
    }

    #[test]
    fn emoji_and_long_input_are_bounded() {
        let q = SearchQuery::parse(&"🎉 shoe ".repeat(100)).unwrap();
        assert!(q.groups.len() <= MAX_TERMS);
    }

    proptest! {
        #[test]
        fn rendered_queries_hold_only_safe_characters(text in ".{0,600}") {
            if let Some(q) = SearchQuery::parse(&text) {
                for rendered in [q.to_tsquery(), q.to_fts5()] {
                    prop_assert!(rendered.chars().all(|c| c.is_alphanumeric() || " '\"()|&!<->:*ANDORNT".contains(c)), "{}", rendered);
                }
            }
        }
    }
}
