//! What the command prints: lines on stdout and stderr that a closed pipe cannot turn into a
//! panic (`mercato seed … 2>&1 | head`), and errors that say each cause once.

use std::fmt::{Arguments, Write as _};
use std::io::Write as _;

/// Prints a line on stdout, like `println!`, but a reader that went away (a closed pipe) drops
/// the line instead of panicking: nothing is left to tell, and the work itself is not affected.
#[macro_export]
macro_rules! outln {
    () => { $crate::console::write_out(format_args!("")) };
    ($($arg:tt)*) => { $crate::console::write_out(format_args!($($arg)*)) };
}

/// Prints a line on stderr, like `eprintln!`, surviving a closed pipe as [`outln!`] does.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::console::write_err(format_args!($($arg)*)) };
}

/// The body of [`outln!`].
pub fn write_out(line: Arguments<'_>) {
    // A failed write has nowhere left to be reported; `println!` would panic instead.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The body of [`errln!`].
pub fn write_err(line: Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `error`'s message and its causes, joined by `: `, leaving out a cause whose words are already
/// there: many errors repeat their source in their own message, which `{:#}` would print twice
/// ("cannot read x.json: No such file or directory (os error 2): No such file or directory …").
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if message.is_empty() || text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        let _ = write!(text, "{message}");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_repeated_by_its_context_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let error = anyhow::Error::new(io).context(format!(
            "cannot read nope.json: {}",
            std::io::Error::from(std::io::ErrorKind::NotFound)
        ));
        assert_eq!(describe(&error), "cannot read nope.json: entity not found");
    }

    #[test]
    fn distinct_causes_are_all_said_in_order() {
        let error = anyhow::anyhow!("connection refused").context("cannot migrate users");
        assert_eq!(describe(&error), "cannot migrate users: connection refused");
    }
}
